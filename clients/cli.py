"""`crm-client`: the command line over CrmClient."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from clients.client import CrmClient
from clients.errors import CrmError
from clients.model_types import ModelSummary


def _health(args: argparse.Namespace, client: CrmClient) -> int:
    status = client.health(args.service)
    print(f"{args.service or '(server)'}: {status}")
    return 0 if status == "SERVING" else 1


def _models(args: argparse.Namespace, client: CrmClient) -> int:
    if args.name:
        meta = client.model_metadata(args.name, args.version)
        if args.features:
            print(format_features(meta.summary))
        else:
            print(json.dumps(meta.manifest, indent=2, sort_keys=True, default=str))
        return 0
    catalog = client.catalog()
    if args.json:
        listed = catalog.data_artifacts if args.data else catalog.models
        print(json.dumps([asdict(m) for m in listed], indent=2, default=str))
        return 0
    if not args.data:
        print(
            f"{'model':<14} {'version':>7}  {'default':<8} {'loaded':<10} {'features':>8}  sha256"
        )
        for m in catalog.models:
            loaded = ",".join(map(str, m.loaded_versions))
            print(
                f"{m.name:<14} {m.version:>7}  {m.default_source.lower():<8} {loaded:<10}"
                f" {len(m.feature_names):>8}  {m.onnx_sha256[:16]}"
            )
        print()
    print(f"{'data artifact':<14} {'version':>7}  {'loaded':<10}")
    for m in catalog.data_artifacts:
        print(f"{m.name:<14} {m.version:>7}  {','.join(map(str, m.loaded_versions)):<10}")
    return 0


def format_features(model: ModelSummary) -> str:
    """A model's inputs as a table: name, unit, typical value (training mean) and meaning."""
    width = max((len(f.name) for f in model.features), default=7)
    lines = [f"{'feature':<{width}}  {'unit':<14} {'typical':>10}  meaning"]
    for f in model.features:
        typical = "" if f.typical_value is None else f"{f.typical_value:.4g}"
        lines.append(f"{f.name:<{width}}  {f.unit or '-':<14} {typical:>10}  {f.meaning or '-'}")
    return "\n".join(lines)


def _default(args: argparse.Namespace, client: CrmClient) -> int:
    if args.clear == (args.pin_version is not None):
        print("crm-client: give VERSION to pin, or --clear (not both)", file=sys.stderr)
        return 2
    if args.clear:
        model = client.clear_default_version(args.model)
    else:
        model = client.set_default_version(args.model, args.pin_version)
    print(f"{model.name}: serving version {model.default_version} ({model.default_source.lower()})")
    return 0


def _reload(args: argparse.Namespace, client: CrmClient) -> int:
    results = client.reload_models()
    for r in results:
        print(f"{r.name} v{r.version}: {r.outcome}" + (f" ({r.reason})" if r.reason else ""))
    return 1 if any(r.outcome == "REFUSED" for r in results) else 0


def _score(args: argparse.Namespace, client: CrmClient) -> int:
    import pandas as pd

    try:
        frame = pd.read_csv(args.input, dtype={args.id_column: str})
    except (OSError, ValueError) as err:
        print(f"crm-client: cannot read {args.input}: {err}", file=sys.stderr)
        return 2
    if frame.empty:
        print(f"crm-client: {args.input} has no rows", file=sys.stderr)
        return 2
    if args.id_column in frame.columns and len(frame.columns) > 1 and args.ids_only:
        frame = frame[[args.id_column]]
    total = len(frame)

    def progress(done: int) -> None:
        if not args.quiet:
            print(f"\rscored {done}/{total} rows ({100 * done // total}%)", end="", file=sys.stderr)

    try:
        result = client.scoring.stream_frame(
            args.kind, frame, args.batch_rows, args.id_column, on_progress=progress
        )
    except CrmError as err:
        if not args.quiet:
            print(file=sys.stderr)
        print(f"crm-client: {err}", file=sys.stderr)
        for v in err.violations:
            print(f"  {_csv_location(v.field, args.batch_rows)}: {v.description}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(file=sys.stderr)
    result.to_csv(args.output, index=False)
    failed = int((result.get("error", pd.Series(dtype=str)).fillna("") != "").sum())
    print(
        f"wrote {len(result)} rows to {args.output}" + (f" ({failed} not scored)" if failed else "")
    )
    return 0


def _csv_location(field: str, batch_rows: int) -> str:
    """Turn `batch.values[12].recency_days` into the CSV row and column it came from."""
    import re

    match = re.match(r"batch\.values\[(\d+)\]\.(.+)", field)
    if match is None:
        return field
    return f"column {match.group(2)!r} (row {int(match.group(1)) + 1} of its batch)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm-client", description="Call a crm-serving server.")
    parser.add_argument(
        "--target",
        default="localhost:50051",
        help="server address host:port; several comma-separated, or dns:///name:port, balance calls round robin over replicas",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline per call, seconds")
    tls = parser.add_argument_group("TLS and authentication")
    tls.add_argument("--ca", type=Path, help="PEM CA bundle to trust: connect with TLS")
    tls.add_argument("--cert", type=Path, help="PEM client certificate (mTLS; with --key)")
    tls.add_argument("--key", type=Path, help="PEM private key of --cert")
    tls.add_argument(
        "--token",
        default=os.environ.get("CRM_TOKEN") or None,
        help="bearer token sent on every call (default: env CRM_TOKEN, which keeps it out of "
        "shell history)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    health = sub.add_parser("health", help="health of the server or one service")
    health.add_argument("--service", default="", help="e.g. crm.v1.ChurnService; empty = server")
    health.set_defaults(func=_health)

    models = sub.add_parser(
        "models", help="list models and data artifacts, or show one model's manifest"
    )
    models.add_argument("--name", default="", help="show this model's full manifest")
    models.add_argument("--version", type=int, default=0, help="version (0 = serving)")
    models.add_argument(
        "--features", action="store_true", help="with --name: its inputs' meanings and units"
    )
    models.add_argument("--data", action="store_true", help="list the data artifacts only")
    models.add_argument("--json", action="store_true", help="list as JSON (models, or --data)")
    models.set_defaults(func=_models)
    models_sub = models.add_subparsers(dest="models_command", metavar="{default}")
    default = models_sub.add_parser(
        "default",
        help="pin the version a model serves, or --clear the pin (admin scope)",
        description="Pins a loaded version as the one served to calls that name none, on "
        "every replica and across restarts; --clear serves the newest version again.",
    )
    default.add_argument("model", metavar="NAME", help="model name, e.g. churn")
    default.add_argument(
        "pin_version", metavar="VERSION", type=int, nargs="?", help="a loaded version to serve"
    )
    default.add_argument("--clear", action="store_true", help="drop the pin: serve the newest")
    default.set_defaults(func=_default)

    reload_ = sub.add_parser("reload", help="ask the server to rescan its artifacts now")
    reload_.set_defaults(func=_reload)

    score = sub.add_parser(
        "score",
        help="bulk-score a CSV through the streaming RPCs",
        description="Columns: customer_id plus feature columns (scored as given), or "
        "customer_id alone (looked up in the server's feature snapshot).",
    )
    score.add_argument("kind", choices=("churn", "spend", "segments"))
    score.add_argument("--input", required=True, help="CSV file of customers")
    score.add_argument("--output", required=True, help="CSV file to write")
    score.add_argument("--id-column", default="customer_id", help="column holding the id")
    score.add_argument("--ids-only", action="store_true", help="ignore feature columns")
    score.add_argument("--batch-rows", type=int, default=1000, help="rows per stream message")
    score.add_argument("--quiet", action="store_true", help="no progress output")
    score.set_defaults(func=_score)

    from clients import campaign_cli, integrity_cli, transactions_cli

    campaign_cli.register(sub)
    integrity_cli.register(sub)
    transactions_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.cert is None) != (args.key is None):
        parser.error("--cert and --key go together")
    for path in (args.ca, args.cert, args.key):
        if path is not None and not path.is_file():
            parser.error(f"{path}: no such file")
    try:
        with CrmClient(
            args.target,
            timeout=args.timeout,
            ca=args.ca,
            cert=args.cert,
            key=args.key,
            token=args.token,
        ) as client:
            return int(args.func(args, client))
    except CrmError as err:
        print(f"crm-client: {err}", file=sys.stderr)
        for v in err.violations:
            print(f"  {v.field}: {v.description}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
