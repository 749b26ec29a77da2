"""For every scenario in the catalog: a real sandbox, real load, the scenario on, and its
signature holds within its stated time; then each mitigation changes it as it claims.

Each check mostly waits (for warm-up, for figure windows), so several run at once, each in
its own sandbox; a scenario whose signature is about CPU or tail latency runs alone, so
that its neighbours' load cannot make or break it."""

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from sandbox.backends.base import SandboxSpec
from sandbox.backends.local import LocalBackend
from sandbox.catalog import SCENARIOS
from sandbox.client import SandboxClient
from tests.sandbox.signatures import CatalogCheck, catalog_check

AT_ONCE = int(os.environ.get("SIGNATURE_SANDBOXES", "3"))
# Signatures on CPU use or latency percentiles measured against the machine: alone.
ALONE = frozenset(
    {
        "algorithmic-degradation",
        "cpu-spike",
        "resource-starvation",
        "variable-latency",
        "tail-latency",
    }
)
ALONE |= {"gc-pause"}  # dbperf: the collector's pauses are CPU work, neighbours stretch them


class Slots:
    """AT_ONCE shared slots; a check that must run alone takes them all, and once one
    waits for them no new check starts (or it would wait for ever)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self.alone_waiting = 0
        self.condition = threading.Condition()

    def take(self, count: int) -> None:
        alone = count == self.size
        with self.condition:
            self.alone_waiting += alone
            self.condition.wait_for(
                lambda: self.used + count <= self.size and (alone or not self.alone_waiting)
            )
            self.alone_waiting -= alone
            self.used += count

    def give(self, count: int) -> None:
        with self.condition:
            self.used -= count
            self.condition.notify_all()


# The backend starts and stops one sandbox at a time (its zygote is not shared by threads).
BACKEND_LOCK = threading.Lock()


def run_one(backend: LocalBackend, slots: Slots, slug: str, number: int) -> CatalogCheck:
    count = slots.size if slug in ALONE else 1
    slots.take(count)
    try:
        with BACKEND_LOCK:
            handle = backend.start(SandboxSpec(session_id=f"sig{os.getpid() % 10000}-{number}"))
        try:
            client = SandboxClient(handle.address, timeout=10)
            return catalog_check(client, SCENARIOS[slug], handle.details["limits_via"])
        finally:
            with BACKEND_LOCK:
                backend.stop(handle)
    finally:
        slots.give(count)


@pytest.fixture(scope="module")
def signature_checks(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[CatalogCheck]]]:
    """Starts the checks of every selected scenario, in the order the tests will ask."""
    selected = [
        str(item.callspec.params["slug"])
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_scenario_signature_and_mitigations"
    ]
    selected.sort(key=lambda slug: slug not in ALONE)  # alone first, then the rest at once
    root = Path(tempfile.mkdtemp(prefix="sdls-", dir="/tmp"))
    backend = LocalBackend(root=root)
    slots = Slots(AT_ONCE)
    pool = ThreadPoolExecutor(max_workers=AT_ONCE, thread_name_prefix="signature")
    checks = {
        slug: pool.submit(run_one, backend, slots, slug, number)
        for number, slug in enumerate(selected)
    }
    try:
        yield checks
    finally:
        for future in checks.values():
            future.cancel()
        pool.shutdown(wait=True)
        for handle in backend.list():
            backend.stop(handle)
        backend.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.xdist_group("sandbox-signatures")  # every check on one worker, run as above
@pytest.mark.parametrize("slug", sorted(SCENARIOS))
def test_scenario_signature_and_mitigations(slug, signature_checks):
    check = signature_checks[slug].result()
    if check.skipped:
        pytest.skip(check.skipped)
    assert check.passed, "\n".join(check.problems)
