"""Issue 16: property-based fuzzing of every declared RPC against a real server, CI-sized.

The generators, calls and checks are `tests.fuzz.harness` (`make fuzz` runs the same at
>= 10,000 calls). Every violation is collected and reported at once, grouped by RPC.
"""

from __future__ import annotations

from pathlib import Path

from tests.fuzz.harness import Plan, declared_rpcs, run_fuzz

CI_PLAN = Plan(per_rpc_kind=6, unknown_methods=2500, seed=16, workers=4, sweep_values=2)


def test_declared_rpcs_cover_every_service() -> None:
    services = {r.path.split("/")[1] for r in declared_rpcs()}
    assert {
        "crm.v1.SegmentationService", "crm.v1.ChurnService", "crm.v1.SpendService",
        "crm.v1.IntegrityService", "crm.v1.CampaignService", "crm.v1.ModelService",
        "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    } <= services  # fmt: skip


def test_fuzz_every_rpc(start_server, trained_artifacts: Path) -> None:
    report = run_fuzz(lambda: start_server(trained_artifacts), CI_PLAN)
    assert report.rpc_calls >= 500, report.totals()
    assert not report.violations, (
        f"{len(report.violations)} violations\n{report.violations_text()}\n\n"
        f"{report.table()}\n{report.totals()}"
    )
