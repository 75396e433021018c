"""`make fuzz`: the fuzz test's generators at full size against a fresh server.

    python -m tests.fuzz [--calls 10000] [--seed 16] [--artifacts artifacts] [--auth]

Starts the server on --artifacts with a temporary data directory, fuzzes every declared RPC
until at least --calls calls to them were made (then --unknown-methods calls to made-up names), prints a table of status codes per RPC, the violations
grouped by RPC and a totals line; exits 1 if there was any violation.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

from server.security.mint import mint, write_keys
from server.security.scopes import ALL
from tests.fuzz.harness import Plan, declared_rpcs, run_fuzz
from tests.serverproc import RunningServer, launch

KINDS_PER_ROUND = 3  # hostile at n examples, four raw kinds at n/2 each


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--calls", type=int, default=10_000, help="at least this many calls to declared RPCs"
    )
    parser.add_argument("--seed", type=int, default=16, help="hypothesis seed base")
    parser.add_argument("--workers", type=int, default=4, help="calls in flight at once")
    parser.add_argument("--unknown-methods", type=int, default=5000, help="unknown method names")
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--only", action="append", default=[], help="fuzz RPCs whose path has this")
    parser.add_argument(
        "--auth",
        action="store_true",
        help="start the server with a fresh HMAC key and send a token with scope '*' on every call",
    )
    args = parser.parse_args(argv)
    if not any(args.artifacts.glob("*/*/manifest.json")):
        print(f"no artifacts in {args.artifacts}/ (make default-artifacts)", file=sys.stderr)
        return 2
    rpcs = declared_rpcs()
    per = math.ceil(args.calls / (KINDS_PER_ROUND * len(rpcs)))
    with tempfile.TemporaryDirectory(prefix="crm-fuzz-") as tmp:
        server_args: list[str] = []
        token = ""
        if args.auth:
            (key,) = write_keys(Path(tmp) / "keys", "HS256")
            server_args = ["--auth-hmac-secret-file", str(key)]
            token = mint(key, ALL, ttl=24 * 3600, sub="fuzz")
        plan = Plan(
            per_rpc_kind=max(2, per),
            unknown_methods=args.unknown_methods,
            seed=args.seed,
            workers=args.workers,
            min_calls=args.calls,
            only=tuple(args.only),
            token=token,
        )
        auth = " with authentication on (a '*' token)" if args.auth else ""
        print(f"fuzzing {len(rpcs)} declared RPCs{auth}: {plan}", flush=True)
        started: list[RunningServer] = []

        def fresh_server() -> RunningServer:
            data = Path(tempfile.mkdtemp(dir=tmp))
            started.append(launch(args.artifacts.resolve(), data, server_args))
            return started[-1]

        try:
            report = run_fuzz(
                fresh_server, plan, progress=lambda s: print(s, file=sys.stderr, flush=True)
            )
        finally:
            for server in started:
                server.kill()
    print(report.table())
    if report.violations:
        print("\nVIOLATIONS\n" + report.violations_text())
    print(report.totals())
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
