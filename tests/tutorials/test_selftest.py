"""Every tutorial's hidden solutions, run against a real sandbox, pass every check of
their step; doing nothing passes none of a step that needs an action."""

import time
from dataclasses import asdict
from pathlib import Path

import pytest

from apps.tutorials.checks import StepChecker, quiz_answer
from apps.tutorials.content import Tutorial, tutorials_read
from sandbox.backends.base import SandboxSpec
from sandbox.backends.local import LocalBackend
from sandbox.client import SandboxClient

pytestmark = pytest.mark.xdist_group("tutorial-selftest")
CONTENT = Path(__file__).resolve().parents[2] / "apps" / "tutorials" / "content"
TUTORIALS = tutorials_read(CONTENT)


def frames_for(client: SandboxClient, checker: StepChecker, seconds: float) -> bool:
    """Feeds a frame a second (as the relay does) until the step is done or time is up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = client.state()
        checker.feed({"at": time.time(), **state})
        if checker.done:
            return True
        time.sleep(1.0)
    return checker.done


def act(client: SandboxClient, action: dict) -> None:
    if action["action"] == "scenario":
        if action["enabled"]:
            client.scenario_enable(action["slug"], action["parameters"])
        else:
            client.scenario_disable(action["slug"])
    elif action["action"] == "mitigation":
        if action["enabled"]:
            client.mitigation_enable(action["slug"], action["parameters"])
        else:
            client.mitigation_disable(action["slug"])
    elif action["action"] == "load":
        client.load(rate_rps=action["rate_rps"])


@pytest.mark.parametrize("tutorial", TUTORIALS, ids=lambda t: t.slug)
def test_solutions_pass_and_doing_nothing_does_not(tutorial: Tutorial, tmp_path_factory):
    root = Path(tmp_path_factory.mktemp("st", numbered=True))
    backend = LocalBackend(root=root)
    handle = backend.start(SandboxSpec(session_id="selftest", scenarios=tutorial.scenarios))
    try:
        client = SandboxClient(handle.address)
        for step in tutorial.steps:
            checks = [asdict(c) for c in step.checks]
            longest = max(
                [c["spec"].get("for_seconds", 0) for c in checks if c["type"] == "metric"] or [0]
            )
            if step.solution:
                idle = StepChecker(checks)
                assert not frames_for(client, idle, longest + 4), (
                    f"{tutorial.slug}/{step.slug} passes without doing anything"
                )
            checker = StepChecker(checks)
            for action in step.solution:
                if action["action"] == "wait":
                    frames_for(client, checker, action["seconds"])
                else:
                    act(client, action)
            assert frames_for(client, checker, longest + 45), (
                f"{tutorial.slug}/{step.slug}: these checks never passed: "
                f"{[c['id'] for c in checker.telemetry_checks if c['id'] not in checker.passed]}"
            )
            for check in checks:
                if check["type"] == "quiz":
                    right = [n for n, c in enumerate(check["spec"]["choices"]) if c["correct"]]
                    assert quiz_answer(check, right)[0]
    finally:
        backend.stop(handle)
        backend.close()
