"""Which feature table documents which model, and a manifest's `feature_docs` both ways.

Training writes `feature_docs` (name, meaning, unit of every input, in `features` order) into
each model's manifest from the tables in `crm/features.py`, `crm/line_features.py` and
`crm/demand.py`. Readers call `documented`: the manifest's own docs where it has them, else
the code's table for the same names (manifests written before the field existed), else an
empty meaning and unit for a name no table knows.

`python -m crm.feature_docs` prints the churn features as the README's Markdown table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crm.demand import DEMAND_FEATURES
from crm.feature_spec import FeatureSpec, FeatureTable
from crm.features import CUSTOMER_FEATURES
from crm.line_features import LINE_FEATURES

MANIFEST_KEY = "feature_docs"
# The models training writes, by artifact name, and the table their inputs come from.
TABLES: dict[str, FeatureTable] = {
    "churn": CUSTOMER_FEATURES,
    "spend": CUSTOMER_FEATURES,
    "segmentation": CUSTOMER_FEATURES,
    "revenue": LINE_FEATURES,
    "demand": DEMAND_FEATURES,
}


def from_code(model: str, names: Sequence[str]) -> list[FeatureSpec]:
    """Specs of `names` from the table of `model` (empty meaning/unit where it has none)."""
    table = TABLES.get(model)
    found = [table.describe(n) if table else None for n in names]
    return [s or FeatureSpec(n, "", "") for n, s in zip(names, found, strict=True)]


def to_manifest(specs: Sequence[FeatureSpec]) -> list[dict[str, str]]:
    """The manifest's `feature_docs` value."""
    return [{"name": s.name, "meaning": s.meaning, "unit": s.unit} for s in specs]


def _from_manifest(raw: object) -> dict[str, FeatureSpec]:
    """The usable entries of a manifest's `feature_docs`, by name (malformed ones skipped)."""
    if not isinstance(raw, list):
        return {}
    docs = {}
    for entry in raw:
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            name = entry["name"]
            docs[name] = FeatureSpec(
                name, str(entry.get("meaning", "")), str(entry.get("unit", ""))
            )
    return docs


def documented(model: str, manifest: Mapping[str, Any]) -> list[FeatureSpec]:
    """Every input of a model's manifest (`features` order) with its meaning and unit."""
    names = [str(n) for n in manifest.get("features") or []]
    own = _from_manifest(manifest.get(MANIFEST_KEY))
    code = from_code(model, names)
    return [own.get(n) or c for n, c in zip(names, code, strict=True)]


def typical_values(manifest: Mapping[str, Any]) -> dict[str, float]:
    """The training mean of each input where the manifest records one (`serving.feature_means`)."""
    serving = manifest.get("serving")
    means = serving.get("feature_means") if isinstance(serving, Mapping) else None
    if not isinstance(means, Mapping):
        return {}
    return {
        str(k): float(v)
        for k, v in means.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def markdown_table(model: str = "churn") -> str:
    """A Markdown table (name, meaning, unit) of a model's feature table, per-category row last."""
    table = TABLES[model]
    rows = ["| feature | meaning | unit |", "|---|---|---|"]
    rows += [f"| `{s.name}` | {s.meaning} | {s.unit} |" for s in (*table.base, table.per_category)]
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
