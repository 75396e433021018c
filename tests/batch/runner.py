"""crm-batch run in this process through its real entry point."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from batch.cli import main


@dataclass
class Run:
    code: int
    stderr: str
    output: Path

    def frame(self) -> pd.DataFrame:
        return pd.read_parquet(self.output)


def run_batch(input_path: Path, output: Path, artifacts: Path, *extra: str) -> Run:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(
            ["--input", str(input_path), "--output", str(output), "--artifacts", str(artifacts),
             "--quiet", *extra]
        )  # fmt: skip
    return Run(code, err.getvalue(), output)
