"""deploy/Dockerfile lints clean (hadolint) and copies only what exists."""

from __future__ import annotations

import subprocess

from tests.deploy.manifests import DEPLOY, REPO, tool


def test_hadolint_clean() -> None:
    dockerfile = DEPLOY / "Dockerfile"
    proc = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "info", str(dockerfile)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_copied_sources_exist_and_user_is_not_root() -> None:
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    for line in lines:
        if line.startswith("COPY ") and "--from=" not in line:
            *sources, _ = [w for w in line.split()[1:] if not w.startswith("--")]
            for source in sources:
                if source != "artifacts":  # made by `make train` (ignored by git)
                    assert (REPO / source).exists(), source
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"0", "root"}
