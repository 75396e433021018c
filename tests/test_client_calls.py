"""One call path: a CrmClient and its sub-clients share one deadline and one error mapping."""

from __future__ import annotations

import socket
import time

import grpc
import pytest

from clients import CrmClient, CrmError
from crm.v1 import churn_pb2


def test_the_deadline_set_on_the_client_holds_for_every_sub_client() -> None:
    # A server that accepts connections and never answers: only the deadline ends a call.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        target = f"127.0.0.1:{silent.getsockname()[1]}"
        with CrmClient(target, timeout=60) as client:
            client.timeout = 0.3  # set after construction: every sub-client must follow
            calls = {
                "health": client.health,
                "models": client.list_models,
                "raw stub": lambda: client.call(
                    client.churn_stub.GetChurnStats, churn_pb2.GetChurnStatsRequest()
                ),
                "predict": lambda: client.predict_churn(["13085"]),
                "scoring": client.scoring.churn_stats,
                "campaign": client.campaign.list_campaigns,
                "integrity": client.integrity.tree_head,
            }
            for name, call in calls.items():
                started = time.monotonic()
                with pytest.raises(CrmError) as caught:
                    call()
                assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED, name
                assert time.monotonic() - started < 10, name
