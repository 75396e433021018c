"""FeatureSpec: a model input's name, what it means and its unit, written once beside the code.

Each feature module (`crm/features.py`, `crm/line_features.py`, `crm/demand.py`) keeps a table
of FeatureSpec and derives its ordered names from it, so a name cannot exist without its
meaning. Training copies the table into each manifest (`feature_docs`); the server reads it from
there, or from the same tables for a manifest written before the field existed.

Units convention (the `unit` strings): "days" (fractional days), "count", "money" (the data's
currency, as in the manifest's `serving.currency`), "units" (items sold), "fraction 0..1",
"ratio", "-1..1", "flag 0/1", "ln money" / "ln units" (ln(1 + x) of one), or a range such as
"1..12" or "hour 0..24"; a per-category input is written once with `{category}` in its name
and meaning. ModelInfo.FeatureInfo.unit (protos/crm/v1/model.proto) documents the same list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

CATEGORY_SLOT = "{category}"


@dataclass(frozen=True)
class FeatureSpec:
    """One model input: `name` as the API spells it, `meaning` in a sentence, `unit`."""

    name: str
    meaning: str
    unit: str

    def for_category(self, category: str) -> FeatureSpec:
        """The concrete input of a per-category template (`cat__{category}` -> `cat__home`)."""
        return FeatureSpec(
            self.name.replace(CATEGORY_SLOT, category),
            self.meaning.replace(CATEGORY_SLOT, repr(category)),
            self.unit,
        )

    @property
    def prefix(self) -> str:
        """What every concrete name of a per-category template starts with ("" otherwise)."""
        return self.name.split(CATEGORY_SLOT)[0] if CATEGORY_SLOT in self.name else ""


@dataclass(frozen=True)
class FeatureTable:
    """A model family's inputs: the fixed ones in order, then one per category (manifest order)."""

    base: tuple[FeatureSpec, ...]
    per_category: FeatureSpec  # its name and meaning hold CATEGORY_SLOT

    @property
    def base_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.base)

    def specs(self, categories: Sequence[str]) -> list[FeatureSpec]:
        """The ordered inputs for a category list, each with meaning and unit."""
        return [*self.base, *(self.per_category.for_category(c) for c in categories)]

    def names(self, categories: Sequence[str]) -> list[str]:
        """The ordered input names for a category list (a manifest's `features`)."""
        return [s.name for s in self.specs(categories)]

    def describe(self, name: str) -> FeatureSpec | None:
        """The spec of one concrete input name (None when the table does not know it)."""
        for spec in self.base:
            if spec.name == name:
                return spec
        prefix = self.per_category.prefix
        if prefix and name.startswith(prefix) and len(name) > len(prefix):
            return self.per_category.for_category(name[len(prefix) :])
        return None
