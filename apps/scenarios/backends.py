"""The sandbox backend this process uses, chosen by settings (`SANDBOX_BACKEND`)."""

import os
from functools import cache
from pathlib import Path

from django.conf import settings

from sandbox.backends.base import SandboxBackend


@cache
def _backend_for(pid: int, name: str, root: str, python: str) -> SandboxBackend:
    # Keyed by pid: a Celery child forked from its parent makes its own (a fork server
    # belongs to the process that started it).
    if name == "local":
        from sandbox.backends.local import LocalBackend

        return LocalBackend(root=Path(root), python=python)
    if name == "docker":
        from sandbox.backends.docker import DockerBackend

        return DockerBackend()
    if name == "kubernetes":
        from sandbox.backends.kubernetes import KubernetesBackend

        return KubernetesBackend()
    raise ValueError(f"SANDBOX_BACKEND must be local, docker or kubernetes, not {name!r}")


def sandbox_backend() -> SandboxBackend:
    return _backend_for(
        os.getpid(), settings.SANDBOX_BACKEND, str(settings.SANDBOX_ROOT), settings.SANDBOX_PYTHON
    )
