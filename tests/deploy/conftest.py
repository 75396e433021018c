"""One real server started with the Deployment's own args (mounted paths pointed at test
files), shared by the probe and dashboard tests of this package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.manifests import Deployed, start_deployed


@pytest.fixture(scope="package")
def deployed(
    tmp_path_factory: pytest.TempPathFactory, trained_artifacts: Path
) -> Iterator[Deployed]:
    # --metrics-tenant-label: the dashboard's tenant panel (off in the Deployment, see README).
    yield from start_deployed(
        tmp_path_factory.mktemp("deployed"),
        trained_artifacts,
        ["--metrics-tenant-label=true", "--health-port=0"],
    )
