"""The Kubernetes manifests: every overlay renders with `kubectl kustomize` and every
object in it is valid against Kubernetes' own schemas (kubernetes-validate, strict: an
unknown field fails too); the pods are restricted, limited and probed; the worker alone
holds an API token, and its role is exactly what the kubernetes backend calls; and the
sandbox pod the backend creates has limits, no privilege, no token, and is selected by
the deny-all NetworkPolicy these manifests install."""

import copy
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as kubernetes_schemas

from sandbox.backends import kubernetes as backend
from sandbox.backends.base import SandboxSpec
from tests.deploy.pods import limits_problems, restricted_problems, selects

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(p.name for p in (KUSTOMIZE / "overlays").iterdir() if p.is_dir())
KUBECTL = shutil.which("kubectl")
KUBERNETES_VERSION = kubernetes_schemas.latest_version()
pytestmark = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed: it renders the Kustomize overlays"
)


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(KUSTOMIZE / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def of_kind(docs, kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def named(docs, kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    return found


def pod_specs(docs) -> dict[str, dict[str, Any]]:
    return {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
    }


def test_both_overlays_exist():
    assert OVERLAYS == ["development", "production"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_against_the_kubernetes_schemas(overlay):
    docs = rendered(overlay)
    assert len(docs) > 15
    for doc in docs:
        kubernetes_schemas.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validation_catches_a_wrong_manifest():
    """The control: a misspelt field or a wrong type is refused, so the test above means
    something."""
    deployment = copy.deepcopy(named(rendered("production"), "Deployment", "web"))
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_schemas.ValidationError):
        kubernetes_schemas.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment = copy.deepcopy(named(rendered("production"), "Deployment", "web"))
    deployment["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_schemas.ValidationError):
        kubernetes_schemas.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_platform_pod_is_restricted_limited_and_tokenless(overlay):
    docs = rendered(overlay)
    for name, template in pod_specs(docs).items():
        spec = template["spec"]
        assert restricted_problems(spec) == [], name
        assert limits_problems(spec) == [], name
        if name == "Deployment/worker":
            assert spec["serviceAccountName"] == "sdlab-sandbox-controller"
            assert spec["automountServiceAccountToken"] is True
        else:
            assert spec["automountServiceAccountToken"] is False, name
    for namespace in of_kind(docs, "Namespace"):
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
            "restricted"
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_processes_are_probed_and_covered_by_disruption_budgets(overlay):
    docs = rendered(overlay)
    budgets = of_kind(docs, "PodDisruptionBudget")
    for process in ("web", "worker", "beat", "relay"):
        deployment = named(docs, "Deployment", process)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert "livenessProbe" in container, process
        if process != "beat":
            assert "readinessProbe" in container, process
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in budgets if selects(b["spec"]["selector"], labels)]
        assert len(covering) == 1, process
        replicas = deployment["spec"]["replicas"]
        # a budget that can never be met blocks every node drain
        assert covering[0]["spec"].get("minAvailable", 0) < replicas, process
    beat = named(docs, "Deployment", "beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"  # never two beats
    migrate = named(docs, "Job", "migrate")
    assert migrate["spec"]["template"]["spec"]["containers"][0]["args"][-2:] == [
        "migrate_schemas",
        "--noinput",
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_sandbox_controller_may_do_what_the_backend_does_and_nothing_more(overlay):
    docs = rendered(overlay)
    assert of_kind(docs, "ClusterRole") == []
    assert of_kind(docs, "ClusterRoleBinding") == []
    (role,) = of_kind(docs, "Role")
    assert role["metadata"]["namespace"] == backend.NAMESPACE
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == backend_api_calls()
    (binding,) = of_kind(docs, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "sdlab-sandbox-controller", "namespace": "sdlab"}
    ]
    config = named(
        docs,
        "ConfigMap",
        next(
            c["metadata"]["name"]
            for c in of_kind(docs, "ConfigMap")
            if c["metadata"]["name"].startswith("sdlab-config")
        ),
    )
    assert config["data"]["SANDBOX_NAMESPACE"] == backend.NAMESPACE
    assert config["data"]["SANDBOX_BACKEND"] == "kubernetes"


API_GROUPS = {"pod": "", "network_policy": "networking.k8s.io"}
RESOURCES = {"pod": "pods", "network_policy": "networkpolicies"}
VERBS = {"read": "get", "create": "create", "delete": "delete", "list": "list"}


def backend_api_calls() -> set[tuple[str, str, str]]:
    """(API group, resource, verb) of every API call in the kubernetes backend's code."""
    source = Path(backend.__file__).read_text()
    calls = set(re.findall(r"\.(\w+?)_namespaced_(\w+)\(", source))
    assert calls, "no API call found in the backend"
    return {(API_GROUPS[kind], RESOURCES[kind], VERBS[verb]) for verb, kind in calls}


def sandbox_pod() -> dict[str, Any]:
    return backend.pod_manifest(SandboxSpec(session_id="o1-s1"), sandbox_id="o1-s1-abc123")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_sandbox_pod_is_limited_unprivileged_tokenless_and_cut_off(overlay):
    docs = rendered(overlay)
    pod = sandbox_pod()
    kubernetes_schemas.validate(pod, KUBERNETES_VERSION, strict=True)
    spec = pod["spec"]
    # limits: memory and CPU, requests equal to limits (nothing borrowed from neighbours)
    assert limits_problems(spec) == []
    (container,) = spec["containers"]
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert spec["volumes"]
    assert all(v["emptyDir"].get("sizeLimit") for v in spec["volumes"])
    # no privilege, by the restricted standard of its namespace
    assert restricted_problems(spec) == []
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    namespace = named(docs, "Namespace", pod["metadata"]["namespace"])
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # no service account token, no service environment
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert "serviceAccountName" not in spec
    # the deny-all policy of these manifests selects it, and is the backend's own
    policies = [
        p
        for p in of_kind(docs, "NetworkPolicy")
        if p["metadata"]["namespace"] == pod["metadata"]["namespace"]
        and selects(p["spec"]["podSelector"], pod["metadata"]["labels"])
    ]
    deny = named(docs, "NetworkPolicy", "sandboxes-deny-all")
    assert deny in policies
    assert deny["spec"] == backend.network_policy_manifest()["spec"]
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert deny["spec"]["egress"] == []  # nothing out: not the platform, not the internet
    for policy in policies:  # no other policy selecting it opens anything
        assert policy["spec"].get("egress", []) == [], policy["metadata"]["name"]
    # ingress only on the control port, only from the platform's pods that talk to it
    (rule,) = deny["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": backend.CONTROL_PORT}]
    (source,) = rule["from"]
    talkers = {
        name.split("/")[1]
        for name, template in pod_specs(docs).items()
        if selects(source["podSelector"], template["metadata"]["labels"])
    }
    assert {"web", "worker", "relay"} <= talkers  # metrics proxy, backend, relay
    assert "beat" not in talkers
