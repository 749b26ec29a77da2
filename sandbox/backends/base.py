"""The sandbox contract between the control plane and wherever sandboxes run."""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from sandbox.isolation import Limits

SESSION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


class SandboxStartError(Exception):
    """The sandbox did not come up; `reason` is for a person, `log_tail` for an engineer."""

    def __init__(self, reason: str, log_tail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.log_tail = log_tail


class SandboxStatus(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"  # stopped on request
    EXPIRED = "expired"  # stopped itself at the end of its TTL
    FAILED = "failed"


@dataclass(frozen=True)
class SandboxSpec:
    session_id: str
    scenarios: tuple[tuple[str, dict[str, Any]], ...] = ()
    limits: Limits = field(
        default_factory=lambda: Limits(memory_bytes=320 * 2**20, cpu_millicores=1000, max_pids=128)
    )
    ttl_seconds: int = 3600
    load_rps: float | None = None
    traces: bool = False  # keep spans for the control plane to collect (GET /traces)

    def __post_init__(self) -> None:
        if not SESSION_ID.match(self.session_id):
            raise ValueError(
                "session_id must be 1-41 lowercase letters, digits or hyphens, "
                f"not {self.session_id!r}"
            )
        if not 10 <= self.ttl_seconds <= 24 * 3600:
            raise ValueError(f"ttl_seconds must be between 10 and 86400, not {self.ttl_seconds}")
        if self.load_rps is not None and not 0 <= self.load_rps <= 200:
            raise ValueError(f"load_rps must be between 0 and 200, not {self.load_rps}")


@dataclass(frozen=True)
class SandboxHandle:
    """Enough to find a sandbox again, from any process: stored by the platform."""

    backend: str
    sandbox_id: str
    address: str  # unix:///.../control.sock or http://host:port
    session_id: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "sandbox_id": self.sandbox_id,
            "address": self.address,
            "session_id": self.session_id,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxHandle:
        return cls(
            data["backend"],
            data["sandbox_id"],
            data["address"],
            data.get("session_id", ""),
            dict(data.get("details") or {}),
        )


def runtime_args(spec: SandboxSpec, run_dir: str) -> list[str]:
    """The sandbox runtime's command-line arguments for `spec`, the same on every backend
    (`python -m sandbox.runtime <these>`)."""
    args = ["--run-dir", run_dir, "--ttl", str(spec.ttl_seconds), "--session", spec.session_id]
    for slug, parameters in spec.scenarios:
        args += ["--scenario", f"{slug}={json.dumps(parameters)}"]
    if spec.load_rps is not None:
        args += ["--load-rps", str(spec.load_rps)]
    if spec.traces:
        args.append("--traces")
    return args


class SandboxBackend(Protocol):
    name: str

    def start(self, spec: SandboxSpec) -> SandboxHandle: ...

    def stop(self, handle: SandboxHandle) -> None: ...

    def status(self, handle: SandboxHandle) -> SandboxStatus: ...

    def list(self) -> list[SandboxHandle]: ...  # the reaper finds orphans with it
