"""Worker processes share the data dir: first opens race, and appends interleave safely."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from clients.integrity import TreeHead as ClientHead
from clients.integrity import verify_tree_head
from server.integrity.signer import TreeHeadSigner
from server.integrity.store import LogStore

# Each process waits for a common start instant, then opens both stores on a fresh data dir
# (the race `--workers N` runs on first start) and appends its leaves one call at a time.
_OPEN_AND_APPEND = """
import json, sys, time
from pathlib import Path
from server.campaign.store import STORE_FILE, CampaignStore
from server.integrity.signer import TreeHeadSigner
from server.integrity.store import LogStore
directory, start_at, tag, count = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
time.sleep(max(0.0, start_at - time.time()))
signer = TreeHeadSigner.load_or_create(directory / "integrity")
store = LogStore(directory / "integrity", signer)
CampaignStore(directory / STORE_FILE)
for i in range(count):
    store.append("shared", [f"{tag}-{i}".encode()])
print(json.dumps({"public_key": signer.public_key.hex()}))
"""


def _race(directory: Path, processes: int, count: int) -> list[dict[str, str]]:
    start_at = time.time() + 1.5  # after every interpreter has imported the server modules
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _OPEN_AND_APPEND,
                str(directory),
                str(start_at),
                f"p{n}",
                str(count),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    return results


def test_workers_opening_a_fresh_data_dir_together_share_one_key_and_one_log(
    tmp_path: Path,
) -> None:
    for attempt in range(3):  # each attempt is a fresh data dir: the first-open race again
        directory = tmp_path / f"data{attempt}"
        results = _race(directory, processes=4, count=25)
        assert len({r["public_key"] for r in results}) == 1, "workers signed with different keys"
        signer = TreeHeadSigner.load_or_create(directory / "integrity")
        assert signer.public_key.hex() == results[0]["public_key"]
        store = LogStore(directory / "integrity", signer)
        try:
            head = store.tree_head("shared")
            assert head.tree_size == 4 * 25  # no append lost, none applied twice
            stored = {leaf.data for leaf in store.leaves("shared", 0, head.tree_size)}
            assert stored == {f"p{n}-{i}".encode() for n in range(4) for i in range(25)}
            verify_tree_head(
                ClientHead(
                    head.log,
                    head.tree_size,
                    head.root_hash,
                    head.timestamp_ms,
                    head.signature,
                    signer.public_key,
                ),
                signer.public_key,
            )
        finally:
            store.close()
