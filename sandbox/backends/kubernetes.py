"""The kubernetes backend: one pod per sandbox. Limits are the pod's resources; the pod
runs under the restricted pod security standard (non-root, read-only root filesystem,
no capabilities, RuntimeDefault seccomp, no service account token); a NetworkPolicy
denies every egress and admits ingress to the control port only from the platform's
pods. The control plane talks to the pod's address on that port.

The generated manifests are what the tests check here (no cluster is reachable from this
machine); the live tests run where a cluster answers and say why they did not otherwise.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Any

from sandbox.backends.base import (
    SandboxHandle,
    SandboxSpec,
    SandboxStartError,
    SandboxStatus,
    runtime_args,
)

NAMESPACE = os.environ.get("SANDBOX_NAMESPACE", "sdlab-sandboxes")
# Where the platform's own pods run: only pods of this namespace may reach a sandbox.
PLATFORM_NAMESPACE = os.environ.get("SDLAB_PLATFORM_NAMESPACE", "sdlab")
IMAGE = os.environ.get("SANDBOX_IMAGE", "sdlab-sandbox:latest")
CONTROL_PORT = 8900
APP_LABEL = "sdlab-sandbox"
PLATFORM_LABEL = {"app.kubernetes.io/part-of": "sdlab", "sdlab.dev/role": "control-plane"}
START_TIMEOUT_S = 120.0


def pod_manifest(
    spec: SandboxSpec, *, sandbox_id: str, image: str = IMAGE, namespace: str = NAMESPACE
) -> dict[str, Any]:
    args = [
        "-m",
        "sandbox.runtime",
        *runtime_args(spec, "/sandbox"),
        "--control-port",
        str(CONTROL_PORT),
        "--control-host",
        "0.0.0.0",  # noqa: S104 (the pod address; the NetworkPolicy admits the platform only)
    ]
    memory = f"{spec.limits.memory_bytes // 2**20}Mi"
    cpu = f"{spec.limits.cpu_millicores}m"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"sandbox-{sandbox_id}",
            "namespace": namespace,
            "labels": {
                "app": APP_LABEL,
                "sdlab.dev/session": spec.session_id,
                "sdlab.dev/sandbox": sandbox_id,
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "activeDeadlineSeconds": spec.ttl_seconds + 60,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "fsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "sandbox",
                    "image": image,
                    "command": ["python"],
                    "args": args,
                    "ports": [{"name": "control", "containerPort": CONTROL_PORT}],
                    "resources": {
                        "requests": {"memory": memory, "cpu": cpu},
                        "limits": {"memory": memory, "cpu": cpu},
                    },
                    "readinessProbe": {
                        "httpGet": {"path": "/health", "port": "control"},
                        "periodSeconds": 1,
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "env": [
                        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
                        {"name": "SANDBOX_SESSION", "value": spec.session_id},
                    ],
                    "volumeMounts": [
                        {"name": "run", "mountPath": "/sandbox"},
                        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108
                    ],
                }
            ],
            "volumes": [
                {"name": "run", "emptyDir": {"sizeLimit": "96Mi"}},
                {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
            ],
        },
    }


def network_policy_manifest(
    namespace: str = NAMESPACE, platform_namespace: str = PLATFORM_NAMESPACE
) -> dict[str, Any]:
    """Deny all egress from sandboxes; ingress only to the control port, only from the
    platform's pods in the platform's namespace (labels alone can be copied elsewhere)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "sandboxes-deny-all", "namespace": namespace},
        "spec": {
            "podSelector": {"matchLabels": {"app": APP_LABEL}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": platform_namespace}
                            },
                            "podSelector": {"matchLabels": PLATFORM_LABEL},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": CONTROL_PORT}],
                }
            ],
            "egress": [],
        },
    }


class KubernetesBackend:
    name = "kubernetes"

    def __init__(self, namespace: str = NAMESPACE, image: str = IMAGE) -> None:
        from kubernetes import client, config

        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
        self.core = client.CoreV1Api()
        self.networking = client.NetworkingV1Api()
        self.namespace = namespace
        self.image = image

    def ensure_network_policy(self) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.networking.create_namespaced_network_policy(
                self.namespace, network_policy_manifest(self.namespace)
            )
        except ApiException as exc:
            if exc.status != 409:
                raise

    def start(self, spec: SandboxSpec) -> SandboxHandle:
        self.ensure_network_policy()
        sandbox_id = f"{spec.session_id}-{secrets.token_hex(3)}"
        manifest = pod_manifest(
            spec, sandbox_id=sandbox_id, image=self.image, namespace=self.namespace
        )
        name = manifest["metadata"]["name"]
        self.core.create_namespaced_pod(self.namespace, manifest)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            pod = self.core.read_namespaced_pod(name, self.namespace)
            if pod.status.phase in ("Failed", "Succeeded"):
                self.core.delete_namespaced_pod(name, self.namespace)
                raise SandboxStartError(
                    f"the sandbox pod ended while starting ({pod.status.phase})"
                )
            ready = any(
                c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []
            )
            if ready and pod.status.pod_ip:
                return SandboxHandle(
                    self.name,
                    sandbox_id,
                    f"http://{pod.status.pod_ip}:{CONTROL_PORT}",
                    spec.session_id,
                    {"pod": name, "namespace": self.namespace},
                )
            time.sleep(0.5)
        self.core.delete_namespaced_pod(name, self.namespace)
        raise SandboxStartError(f"the sandbox pod was not ready within {START_TIMEOUT_S:g} s")

    def stop(self, handle: SandboxHandle) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.delete_namespaced_pod(
                handle.details["pod"], handle.details["namespace"], grace_period_seconds=5
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def status(self, handle: SandboxHandle) -> SandboxStatus:
        from kubernetes.client.exceptions import ApiException

        try:
            pod = self.core.read_namespaced_pod(handle.details["pod"], handle.details["namespace"])
        except ApiException as exc:
            if exc.status == 404:
                return SandboxStatus.STOPPED
            raise
        phase = pod.status.phase
        if phase == "Running":
            ready = any(
                c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []
            )
            return SandboxStatus.RUNNING if ready else SandboxStatus.STARTING
        if phase == "Pending":
            return SandboxStatus.STARTING
        return SandboxStatus.STOPPED if phase == "Succeeded" else SandboxStatus.FAILED

    def list(self) -> list[SandboxHandle]:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"app={APP_LABEL}")
        return [
            SandboxHandle(
                self.name,
                pod.metadata.labels.get("sdlab.dev/sandbox", pod.metadata.name),
                f"http://{pod.status.pod_ip}:{CONTROL_PORT}" if pod.status.pod_ip else "",
                pod.metadata.labels.get("sdlab.dev/session", ""),
                {"pod": pod.metadata.name, "namespace": self.namespace},
            )
            for pod in pods.items
        ]
