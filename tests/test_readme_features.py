"""The README's churn feature table is the code's table (crm/features.py), not a copy that can
drift: regenerate it with `python -m crm.feature_docs` when a feature changes."""

from __future__ import annotations

import re
import subprocess
import sys

from crm.feature_docs import TABLES, markdown_table
from crm.features import feature_names
from tests.serverproc import REPO

START, END = "<!-- churn-features:start -->", "<!-- churn-features:end -->"


def _readme_table() -> str:
    text = (REPO / "README.md").read_text()
    assert text.count(START) == 1 and text.count(END) == 1, "the README lost its table markers"
    return text.split(START)[1].split(END)[0].strip()


def test_readme_churn_table_is_the_code_table() -> None:
    assert _readme_table() == markdown_table("churn")


def test_the_table_names_every_churn_feature_with_meaning_and_unit() -> None:
    rows = [line.split(" | ") for line in _readme_table().splitlines()[2:]]
    names = [cells[0].strip("| `") for cells in rows]
    assert names == [*feature_names([]), "cat_share__{category}"]
    assert all(cells[1].strip() and cells[2].strip(" |") for cells in rows)


def test_the_script_prints_the_table() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "crm.feature_docs"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == markdown_table("churn")


NAMED_UNITS = (
    "days", "count", "money", "units", "fraction 0..1", "ratio", "-1..1", "flag 0/1",
    "ln money", "ln units",
)  # fmt: skip


def test_every_unit_follows_the_documented_convention() -> None:
    """Units are the named ones FeatureInfo.unit lists in model.proto, or a range ("1..12")."""
    proto = (REPO / "protos" / "crm" / "v1" / "model.proto").read_text()
    documented = " ".join(" ".join(line.strip().lstrip("/") for line in proto.splitlines()).split())
    missing = [unit for unit in NAMED_UNITS if f'"{unit}"' not in documented]
    assert not missing, f"FeatureInfo.unit in model.proto does not name {missing}"
    for table in set(TABLES.values()):
        for spec in (*table.base, table.per_category):
            ok = spec.unit in NAMED_UNITS or re.fullmatch(r"(\w+ )?-?\d+\.\.\d+", spec.unit)
            assert ok, f"{spec.name}: unit {spec.unit!r}"
