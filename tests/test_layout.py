"""The server stays in small modules: none over MAX_LINES (generated code is not ours)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def test_no_server_module_is_over_the_line_limit() -> None:
    modules = sorted((ROOT / "server").rglob("*.py"))
    assert len(modules) > 50  # the tree was found
    long = {
        str(path.relative_to(ROOT)): n
        for path in modules
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these modules (over {MAX_LINES} lines): {long}"
