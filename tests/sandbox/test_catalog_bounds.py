"""A scenario's parameter bounds keep the sandbox alive: every scenario of the catalog at
its maximum, all at once, under load, leaves a supervisor that answers and services that
run, and once they are switched off (and the disk disk-full filled is cleaned up) the shop
serves its users again."""

import time
from typing import Any

import pytest

from sandbox.catalog import SCENARIOS
from sandbox.spec import Parameter

# CPU-heavy (every scenario at its worst): on the sandbox worker, after the signatures.
pytestmark = pytest.mark.xdist_group("sandbox-signatures")
ON_S = 15
RECOVERY_S = 60


def at_most(parameter: Parameter) -> Any:
    if parameter.kind == "int":
        return int(parameter.maximum)  # type: ignore[arg-type]
    if parameter.kind == "float":
        return parameter.maximum
    if parameter.kind == "bool":
        return True
    return parameter.default


def test_every_scenario_at_its_maximum_at_once_leaves_a_sandbox_that_recovers(start_sandbox):
    _, client = start_sandbox()
    client.load(rate_rps=20)
    time.sleep(5)
    for scenario in SCENARIOS.values():
        client.scenario_enable(scenario.slug, {p.name: at_most(p) for p in scenario.parameters})
    deadline = time.monotonic() + ON_S
    while time.monotonic() < deadline:
        state = client.state()  # the supervisor answers within the client's timeout
        assert state["ready"]
        assert len(state["scenarios"]) == len(SCENARIOS)
        time.sleep(1)
    for slug in SCENARIOS:
        client.scenario_disable(slug)
    # Switching disk-full off stops its runaway writer; the disk it filled stays full (the
    # lesson: only rotation frees it), and every database write would fail on it.
    client.mitigation_enable("disk-cleanup")
    deadline = time.monotonic() + RECOVERY_S
    served = 0.0
    while time.monotonic() < deadline:
        time.sleep(2)
        served = client.figures().get("users.success_ratio") or 0.0
        if served > 0.9:
            break
    assert served > 0.9, f"users still failing {RECOVERY_S} s after every scenario ended"
    health = client.health()
    assert health["ready"], health
