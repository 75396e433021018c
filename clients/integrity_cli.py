"""`crm-client integrity hash|append|prove|verify`: dataset lineage and verifiable logs.

Every command prints one JSON object on stdout. Exit codes: 0 verified/done, 1 a verification
failed (the server's answer does not check out), 2 bad usage, unreadable input or RPC error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clients.client import CrmClient
from clients.errors import CrmError
from clients.integrity_types import TreeHead
from clients.integrity_verify import VerificationError, verify_tree_head
from crm.lineage import CHUNK_BYTES, CsvDigester, DatasetFormatError, digest_file

DEFAULT_BATCH = 5000
Command = Callable[[argparse.Namespace, CrmClient], int]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `integrity` and its subcommands; each parser's func(args, target) returns an exit code."""
    parser = subparsers.add_parser(
        "integrity", help="dataset hashes and verifiable append-only transaction logs"
    )
    sub = parser.add_subparsers(dest="integrity_command", required=True)

    hash_ = sub.add_parser("hash", help="SHA-256, Merkle root and row count of a CSV (server)")
    hash_.add_argument("file", type=Path, help="transactions CSV (Online Retail II columns)")
    hash_.add_argument(
        "--local", action="store_true", help="also hash locally and fail if the answers differ"
    )
    hash_.set_defaults(func=_guarded(_hash))

    append = sub.add_parser("append", help="append a CSV's rows, canonically encoded, to a log")
    append.add_argument("file", type=Path, help="transactions CSV (Online Retail II columns)")
    append.add_argument("--log", default="", help="log name (default: 'default')")
    append.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="rows per append call")
    append.set_defaults(func=_guarded(_append))

    prove = sub.add_parser("prove", help="prove one leaf is in the log's signed tree")
    which = prove.add_mutually_exclusive_group(required=True)
    which.add_argument("--index", type=int, help="leaf index, 0-based")
    which.add_argument("--leaf-hash", help="leaf hash, hex (the first leaf with it is proved)")
    prove.add_argument("--log", default="", help="log name (default: 'default')")
    prove.add_argument("--public-key", help="pinned server key, hex (default: trust the head's)")
    prove.set_defaults(func=_guarded(_prove))

    verify = sub.add_parser(
        "verify",
        help="check the current signed head extends the last verified one, then save it",
    )
    verify.add_argument("--log", default="", help="log name (default: 'default')")
    verify.add_argument(
        "--state",
        type=Path,
        help="JSON file holding the last verified head (default: ./crm-integrity-<log>.json)",
    )
    verify.add_argument("--public-key", help="pinned server key, hex (default: the saved head's)")
    verify.set_defaults(func=_guarded(_verify))


def _guarded(command: Command) -> Command:
    """Map the expected failures to exit codes and a message on stderr."""

    def run(args: argparse.Namespace, crm: CrmClient) -> int:
        try:
            return command(args, crm)
        except VerificationError as err:
            _emit({"verified": False, "error": str(err)})
            print(f"crm-client integrity: VERIFICATION FAILED: {err}", file=sys.stderr)
            return 1
        except CrmError as err:
            print(f"crm-client integrity: {err}", file=sys.stderr)
            for v in err.violations:
                print(f"  {v.field}: {v.description}", file=sys.stderr)
            return 2
        except (OSError, ValueError, DatasetFormatError) as err:
            print(f"crm-client integrity: {err}", file=sys.stderr)
            return 2

    return run


def _emit(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, indent=2, sort_keys=True))


def _key(hex_key: str | None) -> bytes | None:
    if hex_key is None:
        return None
    key = bytes.fromhex(hex_key)
    if len(key) != 32:
        raise ValueError("--public-key must be 32 bytes of hex")
    return key


def _hash(args: argparse.Namespace, crm: CrmClient) -> int:
    client = crm.integrity
    remote = client.hash_file(args.file)
    payload: dict[str, Any] = remote.as_manifest()
    if not args.local:
        _emit(payload)
        return 0
    local = digest_file(args.file)
    payload["matches_local"] = local == remote
    _emit(payload)
    if local != remote:
        raise VerificationError(f"server hash {remote} differs from local {local}")
    return 0


def _append(args: argparse.Namespace, crm: CrmClient) -> int:
    if args.batch < 1:
        raise ValueError("--batch must be >= 1")
    # Pass 1 checks every row locally, so a bad row refuses the file before anything is logged.
    digest = digest_file(args.file)
    client = crm.integrity
    pending: list[bytes] = []
    first_index: int | None = None
    head: TreeHead | None = None

    def flush() -> None:
        nonlocal first_index, head
        for start in range(0, len(pending), args.batch):
            appended = client.append_leaves(pending[start : start + args.batch], args.log)
            first_index = appended.first_index if first_index is None else first_index
            head = appended.tree_head
        pending.clear()

    digester = CsvDigester(on_leaf=pending.append)
    with open(args.file, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
            digester.update(chunk)
            if len(pending) >= args.batch:
                flush()
    digester.finish()
    flush()
    if head is None or first_index is None:
        raise ValueError(f"{args.file} has no data rows")
    verify_tree_head(head)
    payload = {
        "appended": digest.rows,
        "first_index": first_index,
        "tree_head": head.to_json(),
        "dataset": digest.as_manifest(),
    }
    if first_index == 0 and head.tree_size == digest.rows:
        # A log holding exactly this file has the dataset's Merkle root as its root.
        payload["root_matches_dataset"] = head.root_hash == digest.merkle_root
    _emit(payload)
    return 0


def _prove(args: argparse.Namespace, crm: CrmClient) -> int:
    client = crm.integrity
    index = args.index
    if args.leaf_hash is not None:
        index = client.inclusion_proof(leaf_hash=bytes.fromhex(args.leaf_hash), log=args.log)
        index = index.leaf_index
    head, proof, leaf = client.prove_leaf(index, args.log, _key(args.public_key))
    try:
        data: str = leaf.data.decode()
    except UnicodeDecodeError:
        data = leaf.data.hex()
    _emit(
        {
            "verified": True,
            "leaf_index": proof.leaf_index,
            "leaf_data": data,
            "leaf_hash": proof.leaf_hash.hex(),
            "audit_path": [h.hex() for h in proof.audit_path],
            "tree_head": head.to_json(),
        }
    )
    return 0


def _verify(args: argparse.Namespace, crm: CrmClient) -> int:
    log = args.log or "default"
    state: Path = args.state or Path(f"crm-integrity-{log}.json")
    saved = TreeHead.from_json(json.loads(state.read_text())) if state.exists() else None
    if saved is not None and saved.log != log:
        raise ValueError(f"{state} holds a head of log {saved.log!r}, not {log!r}")
    pinned = _key(args.public_key) or (saved.public_key if saved else None)
    client = crm.integrity
    if saved is None:
        head = client.verified_head(log, pinned)
    else:
        head = client.prove_extends(saved, pinned)
    _save(state, head)
    _emit(
        {
            "verified": True,
            "log": log,
            "previous_tree_size": saved.tree_size if saved else None,
            "tree_size": head.tree_size,
            "root_hash": head.root_hash.hex(),
            "public_key": head.public_key.hex(),
            "first_use": saved is None,
            "state": str(state),
        }
    )
    return 0


def _save(path: Path, head: TreeHead) -> None:
    """Write the verified head atomically, so a crash never leaves a half-written state file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(head.to_json(), fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
