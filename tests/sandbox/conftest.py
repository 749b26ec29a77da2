"""Real sandboxes for the tests: started by the local backend, isolated, stopped after."""

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.backends.base import SandboxHandle, SandboxSpec
from sandbox.backends.local import LocalBackend, host_pids
from sandbox.client import SandboxClient

_numbers = itertools.count(1)


@pytest.fixture
def backend() -> Iterator[LocalBackend]:
    # A short root: a Unix socket path must fit in 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="sdlt-", dir="/tmp"))
    backend = LocalBackend(root=root)
    try:
        yield backend
    finally:
        for handle in backend.list():
            backend.stop(handle)
        backend.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def start_sandbox(backend: LocalBackend) -> Callable[..., tuple[SandboxHandle, SandboxClient]]:
    def start(**spec: object) -> tuple[SandboxHandle, SandboxClient]:
        session = f"t{os.getpid() % 10000}-{next(_numbers)}"
        handle = backend.start(SandboxSpec(session_id=session, **spec))  # type: ignore[arg-type]
        return handle, SandboxClient(handle.address, timeout=10)

    return start


@pytest.fixture
def sandbox(
    start_sandbox: Callable[..., tuple[SandboxHandle, SandboxClient]],
) -> tuple[SandboxHandle, SandboxClient]:
    return start_sandbox()


def sandbox_host_pids(handle: SandboxHandle) -> dict[int, int]:
    return host_pids(handle)
