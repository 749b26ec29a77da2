"""The docker backend: one container per sandbox, with the same guarantees as the local
backend. The container has no network at all (`network_mode: none`), so the control plane
reaches it through the Unix socket in its run directory, bind-mounted from the host; limits
come from the container's memory, CPU and pids settings; the root filesystem is read-only,
every capability is dropped and no privilege can be gained.

The generated container spec is what the tests check here (no docker engine runs on this
machine); the live tests run where an engine answers and say why they did not otherwise.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

from sandbox.backends.base import (
    SandboxHandle,
    SandboxSpec,
    SandboxStartError,
    SandboxStatus,
    runtime_args,
)
from sandbox.client import SandboxClient

LABEL = "dev.sdlab.sandbox"
IMAGE = os.environ.get("SANDBOX_IMAGE", "sdlab-sandbox:latest")
RUN_DIR_IN_CONTAINER = "/sandbox"
START_TIMEOUT_S = 60.0


def container_spec(
    spec: SandboxSpec, *, sandbox_id: str, run_dir: Path, image: str = IMAGE
) -> dict[str, Any]:
    """Keyword arguments for docker's `containers.run` (the SDK's names)."""
    command = ["python", "-m", "sandbox.runtime", *runtime_args(spec, RUN_DIR_IN_CONTAINER)]
    return {
        "image": image,
        "command": command,
        "name": f"sdlab-{sandbox_id}",
        "detach": True,
        "auto_remove": False,
        "labels": {LABEL: "1", f"{LABEL}.session": spec.session_id, f"{LABEL}.id": sandbox_id},
        "network_mode": "none",
        "mem_limit": spec.limits.memory_bytes,
        "memswap_limit": spec.limits.memory_bytes,  # no swap beyond the memory limit
        "nano_cpus": spec.limits.cpu_millicores * 1_000_000,
        "pids_limit": spec.limits.max_pids,
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "user": "10001:10001",
        "tmpfs": {"/tmp": "rw,size=16m,mode=1777"},  # noqa: S108
        "volumes": {str(run_dir): {"bind": RUN_DIR_IN_CONTAINER, "mode": "rw"}},
        "environment": {
            "PYTHONDONTWRITEBYTECODE": "1",
            "SANDBOX_DISK_QUOTA_MB": "64",
            "SANDBOX_SESSION": spec.session_id,
        },
    }


class DockerBackend:
    name = "docker"

    def __init__(self, root: Path | None = None, image: str = IMAGE) -> None:
        import docker

        self.client = docker.from_env()
        self.root = Path(root or os.environ.get("SANDBOX_ROOT") or "/var/lib/sdlab/sandboxes")
        self.image = image

    def start(self, spec: SandboxSpec) -> SandboxHandle:
        sandbox_id = f"{spec.session_id}-{secrets.token_hex(3)}"
        run_dir = self.root / sandbox_id
        run_dir.mkdir(parents=True)
        os.chown(run_dir, 10001, 10001)
        container = self.client.containers.run(
            **container_spec(spec, sandbox_id=sandbox_id, run_dir=run_dir, image=self.image)
        )
        handle = SandboxHandle(
            self.name,
            sandbox_id,
            f"unix://{run_dir}/control.sock",
            spec.session_id,
            {"container": container.id, "run_dir": str(run_dir)},
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            container.reload()
            if container.status in ("exited", "dead"):
                logs = container.logs(tail=30).decode(errors="replace")
                self.stop(handle)
                raise SandboxStartError(
                    f"the container exited while starting ({container.status})", logs
                )
            try:
                if SandboxClient(handle.address, timeout=1).health().get("ready"):
                    return handle
            except OSError:
                pass
            time.sleep(0.05)
        self.stop(handle)
        raise SandboxStartError(f"the sandbox was not ready within {START_TIMEOUT_S:g} s")

    def stop(self, handle: SandboxHandle) -> None:
        import docker.errors

        try:
            container = self.client.containers.get(handle.details["container"])
            container.stop(timeout=5)
            container.remove(force=True)
        except docker.errors.NotFound:
            pass

    def status(self, handle: SandboxHandle) -> SandboxStatus:
        import docker.errors

        try:
            container = self.client.containers.get(handle.details["container"])
        except docker.errors.NotFound:
            return SandboxStatus.STOPPED
        if container.status == "running":
            return SandboxStatus.RUNNING
        if container.status in ("created", "restarting"):
            return SandboxStatus.STARTING
        return (
            SandboxStatus.FAILED
            if container.attrs["State"].get("ExitCode")
            else SandboxStatus.STOPPED
        )

    def list(self) -> list[SandboxHandle]:
        handles = []
        for container in self.client.containers.list(all=True, filters={"label": LABEL}):
            sandbox_id = container.labels.get(f"{LABEL}.id", container.name)
            run_dir = self.root / sandbox_id
            handles.append(
                SandboxHandle(
                    self.name,
                    sandbox_id,
                    f"unix://{run_dir}/control.sock",
                    container.labels.get(f"{LABEL}.session", ""),
                    {"container": container.id, "run_dir": str(run_dir)},
                )
            )
        return handles
