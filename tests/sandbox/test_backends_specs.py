"""The docker and kubernetes backends: their generated specs carry the same guarantees as
the local backend; live tests run where an engine or a cluster answers."""

import shutil
import subprocess
from pathlib import Path

import pytest

from sandbox.backends.base import SandboxSpec
from sandbox.backends.docker import container_spec
from sandbox.backends.kubernetes import CONTROL_PORT, network_policy_manifest, pod_manifest
from sandbox.isolation import Limits

SPEC = SandboxSpec(
    session_id="s42",
    scenarios=(("retry-storm", {"retries": 2}),),
    limits=Limits(memory_bytes=256 * 2**20, cpu_millicores=750, max_pids=100),
    ttl_seconds=900,
    load_rps=5,
)


def test_docker_container_is_limited_unprivileged_and_has_no_network():
    spec = container_spec(
        SPEC, sandbox_id="s42-abc", run_dir=Path("/var/lib/sdlab/sandboxes/s42-abc")
    )
    assert spec["network_mode"] == "none"
    assert spec["mem_limit"] == spec["memswap_limit"] == 256 * 2**20
    assert spec["nano_cpus"] == 750_000_000
    assert spec["pids_limit"] == 100
    assert spec["read_only"] is True
    assert spec["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in spec["security_opt"]
    assert spec["user"] == "10001:10001"
    assert spec["volumes"] == {
        "/var/lib/sdlab/sandboxes/s42-abc": {"bind": "/sandbox", "mode": "rw"}
    }
    command = spec["command"]
    assert command[:3] == ["python", "-m", "sandbox.runtime"]
    assert command[command.index("--scenario") + 1] == 'retry-storm={"retries": 2}'
    assert command[command.index("--ttl") + 1] == "900"


def test_kubernetes_pod_is_restricted_and_limited():
    pod = pod_manifest(
        SPEC, sandbox_id="s42-abc", image="registry.example/sandbox:1", namespace="labs"
    )
    assert pod["metadata"]["namespace"] == "labs"
    assert pod["metadata"]["labels"]["app"] == "sdlab-sandbox"
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = spec["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"]["limits"] == {"memory": "256Mi", "cpu": "750m"}
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["ports"] == [{"name": "control", "containerPort": CONTROL_PORT}]
    assert spec["activeDeadlineSeconds"] == 960


def test_kubernetes_network_policy_denies_all_egress_and_admits_only_the_platform():
    policy = network_policy_manifest("labs")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["egress"] == []
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": CONTROL_PORT}]
    assert rule["from"][0]["podSelector"]["matchLabels"]["sdlab.dev/role"] == "control-plane"
    # labels can be copied into any namespace: the platform's own namespace is required too
    assert rule["from"][0]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "sdlab"}
    }


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubernetes_manifests_render_with_kustomize(tmp_path):
    """kubectl's kustomize reads the manifests as the objects they claim to be (offline:
    no cluster here to validate them against its schema)."""
    import json

    (tmp_path / "pod.yaml").write_text(json.dumps(pod_manifest(SPEC, sandbox_id="s42-abc")))
    (tmp_path / "policy.yaml").write_text(json.dumps(network_policy_manifest()))
    (tmp_path / "kustomization.yaml").write_text("resources:\n- pod.yaml\n- policy.yaml\n")
    result = subprocess.run(
        ["kubectl", "kustomize", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "kind: Pod" in result.stdout
    assert "name: sandbox-s42-abc" in result.stdout
    assert "kind: NetworkPolicy" in result.stdout
    assert "egress: []" in result.stdout


def docker_engine_problem() -> str | None:
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:
        return f"no docker engine answers here ({type(exc).__name__})"
    return None


def cluster_problem() -> str | None:
    try:
        from kubernetes import client, config

        config.load_kube_config()
        client.VersionApi().get_code()
    except Exception as exc:
        return f"no kubernetes cluster answers here ({type(exc).__name__})"
    return None


def test_docker_backend_live():
    problem = docker_engine_problem()
    if problem:
        pytest.skip(problem + ": the container spec above is what would run")
    from sandbox.backends.docker import DockerBackend

    backend = DockerBackend()
    handle = backend.start(SandboxSpec(session_id="live-docker"))
    try:
        assert handle in backend.list() or handle.sandbox_id in {
            h.sandbox_id for h in backend.list()
        }
    finally:
        backend.stop(handle)


def test_kubernetes_backend_live():
    problem = cluster_problem()
    if problem:
        pytest.skip(problem + ": the pod and policy manifests above are what would be applied")
    from sandbox.backends.kubernetes import KubernetesBackend

    backend = KubernetesBackend()
    handle = backend.start(SandboxSpec(session_id="live-k8s"))
    try:
        assert handle.sandbox_id in {h.sandbox_id for h in backend.list()}
    finally:
        backend.stop(handle)
