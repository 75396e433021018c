"""`crm-client transactions export`: the lines ingested into a server (IngestTransactions), as
an Online Retail II CSV the next training run reads (`python -m training --data FILE`)."""

from __future__ import annotations

import argparse
import csv
from datetime import UTC, datetime
from pathlib import Path

from clients.client import CrmClient
from crm.columns import CATEGORY, EXPORT_COLUMNS
from crm.v1 import transactions_pb2, transactions_pb2_grpc

PAGE_SIZE = 5000


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("transactions", help="lines ingested into the server")
    sub = parser.add_subparsers(dest="transactions_command", required=True)
    export = sub.add_parser(
        "export", help="write the ingested lines as an Online Retail II CSV (plus Category)"
    )
    export.add_argument("--out", type=Path, required=True, help="CSV file to write")
    export.add_argument(
        "--since", default="", help="only lines ingested at or after this ISO time (UTC)"
    )
    export.set_defaults(func=_export)


def _export(args: argparse.Namespace, client: CrmClient) -> int:
    stub = transactions_pb2_grpc.TransactionServiceStub(client.channel)
    request = transactions_pb2.ExportTransactionsRequest(page_size=PAGE_SIZE)
    if args.since:
        since = datetime.fromisoformat(args.since)
        request.since.FromDatetime(since if since.tzinfo else since.replace(tzinfo=UTC))
    written = 0
    with args.out.open("w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow([*EXPORT_COLUMNS, CATEGORY])
        while True:
            page = client.call(stub.ExportTransactions, request)
            for item in page.lines:
                line = item.line
                when = line.invoice_date.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S")
                out.writerow(
                    [
                        line.invoice, line.stock_code, line.description, repr(line.quantity),
                        when, repr(line.price), line.customer_id, line.country, line.category,
                    ]
                )  # fmt: skip
                written += 1
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
    print(f"wrote {written} lines to {args.out}")
    return 0
