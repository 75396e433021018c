"""`python -m training`: command-line entry point (exit 0 ok, 2 bad input, 3 parity failure)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pandas as pd

from crm.lineage import DatasetFormatError
from training.labels import DataTooShortError
from training.loader import SchemaError
from training.parity import ParityError
from training.pipeline import MODELS, RunConfig, run, summary_table
from training.synthetic import SyntheticConfig

EXIT_BAD_INPUT = 2
EXIT_PARITY = 3


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _timestamp(text: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train the CRM models and write ONNX artifacts with parity and lineage.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="Online Retail II transactions (.csv or .xlsx)")
    source.add_argument("--synthetic", action="store_true", help="use the built-in generator")
    parser.add_argument("--customers", type=_positive, default=3000, help="synthetic customers")
    parser.add_argument("--days", type=_positive, default=730, help="synthetic days of history")
    parser.add_argument("--seed", type=int, default=7, help="synthetic data seed")
    parser.add_argument(
        "--start", type=date.fromisoformat, default=date(2023, 1, 2), help="synthetic first day"
    )
    parser.add_argument(
        "--category-map", type=Path, help="CSV with StockCode,Category for per-category spend"
    )
    parser.add_argument("--out", type=Path, default=Path("artifacts"), help="artifacts root")
    parser.add_argument(
        "--as-of",
        type=_timestamp,
        help="train on lines before this time (default: midnight after the last line)",
    )
    parser.add_argument("--churn-days", type=_positive, default=90, help="churn horizon")
    parser.add_argument("--horizon-days", type=_positive, default=30, help="spend horizon")
    parser.add_argument(
        "--models", nargs="+", choices=MODELS, default=list(MODELS), help="models to train"
    )
    parser.add_argument("--currency", default="GBP", help="currency code of the data")
    parser.add_argument(
        "--threads", type=_positive, default=min(2, os.cpu_count() or 1), help="XGBoost threads"
    )
    parser.add_argument(
        "--max-fit-rows",
        type=_positive,
        default=150_000,
        help="cap on fit rows per model (a deterministic sample above it)",
    )
    return parser


def config_from_args(args: argparse.Namespace, argv: Sequence[str] | None = None) -> RunConfig:
    synthetic = (
        SyntheticConfig(customers=args.customers, days=args.days, seed=args.seed, start=args.start)
        if args.synthetic
        else None
    )
    return RunConfig(
        out=args.out,
        data=args.data,
        synthetic=synthetic,
        category_map=args.category_map,
        as_of=args.as_of,
        churn_days=args.churn_days,
        horizon_days=args.horizon_days,
        models=tuple(dict.fromkeys(args.models)),
        currency=args.currency,
        threads=args.threads,
        max_fit_rows=args.max_fit_rows,
        command=" ".join(["python -m training", *(argv or [])]),
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    config = config_from_args(args, argv)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        result = run(config, progress)
    except (SchemaError, DatasetFormatError, DataTooShortError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ParityError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_PARITY
    print(summary_table(result.models, result.skipped))
    for name, path in sorted(result.written.items()):
        print(f"wrote {name:<13} {path}")
    if result.report is not None:
        print(f"report        {result.report}")
    return 0
