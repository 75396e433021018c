"""deploy/k8s validates strictly offline (kubernetes-validate's bundled schemas) and its
objects agree with each other and with the server's flags."""

from __future__ import annotations

import subprocess

from server.config import ServerConfig
from tests.deploy.manifests import K8S, container, k8s_object, k8s_objects, tool


def _validate(*paths: str) -> subprocess.CompletedProcess[str]:
    cmd = [tool("kubernetes-validate"), "--strict", *paths]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def test_manifests_validate_strictly() -> None:
    proc = _validate(*map(str, sorted(K8S.glob("*.yaml"))))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passed = proc.stdout.count(" passed for resource ")
    others = [o for o in k8s_objects() if o["apiVersion"] != "monitoring.coreos.com/v1"]
    assert passed == len(others), proc.stdout
    # No schema ships for the Prometheus Operator's CRD: checked by hand below instead.
    assert "Couldn't find schema for kind ServiceMonitor" in proc.stdout


def test_strict_mode_rejects_an_unknown_field(tmp_path) -> None:
    bad = (
        (K8S / "pdb.yaml")
        .read_text()
        .replace("maxUnavailable: 1", "maxUnavailable: 1\n  maxUnavaliable: 1")
    )
    (tmp_path / "bad.yaml").write_text(bad)
    assert _validate(str(tmp_path / "bad.yaml")).returncode != 0


def test_objects_agree() -> None:
    deployment = k8s_object("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for svc in (k8s_object("Service"), k8s_object("Service", "crm-serving-headless")):
        assert svc["spec"]["selector"].items() <= labels.items()
    assert k8s_object("Service", "crm-serving-headless")["spec"]["clusterIP"] == "None"
    assert (
        k8s_object("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items()
        <= labels.items()
    )
    assert k8s_object("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"] == "crm-serving"
    monitor = k8s_object("ServiceMonitor")["spec"]
    headless = k8s_object("Service", "crm-serving-headless")
    assert monitor["selector"]["matchLabels"].items() <= headless["metadata"]["labels"].items()
    assert {e["port"] for e in monitor["endpoints"]} <= {
        p["name"] for p in headless["spec"]["ports"]
    }


def test_container_flags_are_server_flags_and_grace_fits() -> None:
    args = dict(a.removeprefix("--").split("=", 1) for a in container()["args"])
    fields = {f.replace("_", "-") for f in ServerConfig.__dataclass_fields__}
    assert set(args) <= fields
    assert args["host"] == "0.0.0.0"
    spec = k8s_object("Deployment")["spec"]["template"]["spec"]
    pre_stop = container()["lifecycle"]["preStop"]["sleep"]["seconds"]
    # The server is gone by --grace-seconds + 5 s (README Shutdown), after the preStop sleep.
    assert spec["terminationGracePeriodSeconds"] > pre_stop + float(args["grace-seconds"]) + 5
    env = {e["name"]: e for e in container()["env"]}
    assert env["CRM_STORE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "crm-store"
    security = container()["securityContext"]
    assert security["readOnlyRootFilesystem"] and spec["securityContext"]["runAsNonRoot"]
