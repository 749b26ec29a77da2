"""Every tutorial's hidden solutions, run against a real sandbox, pass every check of
their step; doing nothing passes none of a step that needs an action.

One sandbox per tutorial, several at once: a session fixture runs every selected
tutorial in a bounded thread pool (SELFTEST_SANDBOXES, 4 by default), and each
tutorial's test reports what went wrong in it, step by step, with the unmet check ids.
Tutorials whose lesson is CPU contention run one at a time: on a small machine two of
them at once starve each other and their figures stop meaning what the lesson says.
"""

import os
import threading
import time
import traceback
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from apps.tutorials.checks import StepChecker, quiz_answer
from apps.tutorials.content import Step, Tutorial, tutorials_read
from sandbox.backends.base import SandboxSpec, SandboxStartError
from sandbox.backends.local import LocalBackend
from sandbox.client import SandboxClient, SandboxError

# with the signature checks, on one worker: both run several sandboxes at once
pytestmark = pytest.mark.xdist_group("sandbox-signatures")
CONTENT = Path(__file__).resolve().parents[2] / "apps" / "tutorials" / "content"
TUTORIALS = tutorials_read(CONTENT)
SANDBOXES_AT_ONCE = int(os.environ.get("SELFTEST_SANDBOXES", "4"))
CPU_HUNGRY = {"cpu-spike", "resource-starvation", "algorithmic-degradation"}
ONE_CPU_HUNGRY_AT_A_TIME = threading.Semaphore(1)
PATIENCE_S = 60  # on top of a step's longest for_seconds, for a loaded machine


def state_of(client: SandboxClient) -> dict[str, Any]:
    """The sandbox's state; a busy machine may make one read time out, so read twice."""
    try:
        return client.state()
    except (TimeoutError, OSError):
        time.sleep(1.0)
        return client.state()


def frames_for(
    client: SandboxClient, checker: StepChecker, seconds: float, seen: dict[str, Any] | None = None
) -> bool:
    """Feeds a frame a second (as the relay does) until the step is done or time is up;
    `seen` keeps the figures of the last frame."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = {"at": time.time(), **state_of(client)}
        checker.feed(frame)
        if seen is not None:
            seen.update(frame.get("figures") or {})
        if checker.done:
            return True
        time.sleep(1.0)
    return checker.done


def act(client: SandboxClient, action: Mapping[str, Any]) -> None:
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
        client.load(**{k: v for k, v in action.items() if k != "action"})


def unmet(checker: StepChecker, figures: Mapping[str, Any]) -> list[str]:
    """The checks that never passed; a metric check says what it last read."""
    described = []
    for check in checker.telemetry_checks:
        if check["id"] in checker.passed:
            continue
        spec = check["spec"]
        if check["type"] == "metric":
            last = figures.get(spec["figure"])
            described.append(
                f"{check['id']} ({spec['figure']} {spec['op']} {spec['value']:g}, last {last})"
            )
        else:
            described.append(str(check["id"]))
    return described


def diagnosis(client: SandboxClient) -> str:
    """What the sandbox says of itself, so that a failure far away can be understood."""
    try:
        state = state_of(client)
    except (SandboxError, TimeoutError, OSError) as exc:
        return f"  (the sandbox did not answer: {exc!r})"
    restarts = {n: s["restarts"] for n, s in state["services"].items() if s["restarts"]}
    events = [
        f"{e['what']} {e.get('scenario') or e.get('mitigation') or ''}"
        for e in state["events"][-8:]
    ]
    return (
        f"  scenarios {state['scenarios']}, mitigations {state['mitigations']}, "
        f"restarts {restarts}, knob resends {state.get('knob_resends')}\n  last events {events}"
    )


def step_problems(client: SandboxClient, tutorial: Tutorial, step: Step) -> list[str]:
    """Runs one step: first idle (when it needs an action), then its solution."""
    where = f"{tutorial.slug}/{step.slug}"
    problems = []
    checks = [asdict(c) for c in step.checks]
    longest = max([c["spec"].get("for_seconds", 0) for c in checks if c["type"] == "metric"] or [0])
    if step.solution:
        idle = StepChecker(checks)
        if frames_for(client, idle, longest + 4):
            problems.append(f"{where} passes without doing anything")
    checker = StepChecker(checks)
    seen: dict[str, Any] = {}  # the figures of the last frame, to say what was missed
    for action in step.solution:
        if action["action"] == "wait":
            frames_for(client, checker, action["seconds"], seen)
        else:
            act(client, action)
    if not frames_for(client, checker, longest + PATIENCE_S, seen):
        problems.append(
            f"{where}: these checks never passed: {unmet(checker, seen)}\n{diagnosis(client)}"
        )
    for check in checks:
        if check["type"] == "quiz":
            right = [n for n, c in enumerate(check["spec"]["choices"]) if c["correct"]]
            if not quiz_answer(check, right)[0]:
                problems.append(f"{where}: quiz {check['id']} refuses its correct answers")
    return problems


def cpu_hungry(tutorial: Tutorial) -> bool:
    slugs = {s for s, _ in tutorial.scenarios}
    slugs |= {str(a.get("slug")) for step in tutorial.steps for a in step.solution}
    return bool(slugs & CPU_HUNGRY)


def tutorial_problems(tutorial: Tutorial, root: Path) -> list[str]:
    """Every problem of one tutorial, in its own sandbox, which is always stopped."""
    if cpu_hungry(tutorial):
        with ONE_CPU_HUNGRY_AT_A_TIME:
            return _tutorial_problems(tutorial, root)
    return _tutorial_problems(tutorial, root)


def _tutorial_problems(tutorial: Tutorial, root: Path) -> list[str]:
    backend = LocalBackend(root=root)
    problems: list[str] = []
    try:
        spec = SandboxSpec(session_id=f"st-{tutorial.slug}"[:41], scenarios=tutorial.scenarios)
        handle = backend.start(spec)
        try:
            client = SandboxClient(handle.address)
            for step in tutorial.steps:
                problems += step_problems(client, tutorial, step)
        finally:
            backend.stop(handle)
    except (SandboxError, SandboxStartError, TimeoutError, OSError):
        problems.append(f"{tutorial.slug}: the sandbox failed:\n{traceback.format_exc()}")
    except Exception:  # one tutorial's surprise must not hide the others' results
        problems.append(f"{tutorial.slug}: the self-test failed:\n{traceback.format_exc()}")
    finally:
        backend.close()
    return problems


@pytest.fixture(scope="session")
def selftest_results(request, tmp_path_factory) -> dict[str, list[str]]:
    """Runs the tutorials this session selected, several sandboxes at once."""
    selected = {
        item.callspec.params["tutorial"].slug
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_solutions_pass_and_doing_nothing_does_not"
    }
    chosen = [t for t in TUTORIALS if t.slug in selected]
    # Spread the CPU-hungry ones out, so they seldom wait for each other's turn.
    hungry = [t for t in chosen if cpu_hungry(t)]
    others = [t for t in chosen if not cpu_hungry(t)]
    gap = max(1, len(others) // max(1, len(hungry)))
    chosen = []
    for n, tutorial in enumerate(hungry):
        chosen += [tutorial, *others[n * gap : (n + 1) * gap]]
    chosen += others[len(hungry) * gap :]
    roots = {t.slug: Path(tmp_path_factory.mktemp("st", numbered=True)) for t in chosen}
    with ThreadPoolExecutor(max_workers=max(1, SANDBOXES_AT_ONCE)) as pool:
        futures = {t.slug: pool.submit(tutorial_problems, t, roots[t.slug]) for t in chosen}
        return {slug: future.result() for slug, future in futures.items()}


@pytest.mark.parametrize("tutorial", TUTORIALS, ids=lambda t: t.slug)
def test_solutions_pass_and_doing_nothing_does_not(tutorial: Tutorial, selftest_results):
    problems = selftest_results[tutorial.slug]
    assert not problems, "\n".join(problems)
