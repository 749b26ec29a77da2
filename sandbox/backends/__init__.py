"""Where sandboxes run: one interface (start, stop, status, list), several backends."""

from sandbox.backends.base import (
    SandboxBackend,
    SandboxHandle,
    SandboxSpec,
    SandboxStartError,
    SandboxStatus,
)

__all__ = ["SandboxBackend", "SandboxHandle", "SandboxSpec", "SandboxStartError", "SandboxStatus"]


def backend_for(name: str, **options: object) -> SandboxBackend:
    """The backend called `name` ("local", "docker" or "kubernetes")."""
    if name == "local":
        from sandbox.backends.local import LocalBackend

        return LocalBackend(**options)  # type: ignore[arg-type]
    if name == "docker":
        from sandbox.backends.docker import DockerBackend

        return DockerBackend(**options)  # type: ignore[arg-type]
    if name == "kubernetes":
        from sandbox.backends.kubernetes import KubernetesBackend

        return KubernetesBackend(**options)  # type: ignore[arg-type]
    raise ValueError(f"unknown sandbox backend {name!r}; known: local, docker, kubernetes")
