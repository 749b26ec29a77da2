"""Holding a scenario to its signature against a running sandbox (used by the tests and,
with `python -m tests.sandbox.signatures`, by a person checking the catalog by hand)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from sandbox.client import SandboxClient
from sandbox.spec import Scenario, Signature

WARM_UP_S = 8.0
SETTLE_S = 6.0  # a figures window: "before the mitigation" must be all scenario
POLL_S = 1.0


@dataclass
class Observation:
    held: bool
    after_s: float
    baseline: dict[str, float]
    last: dict[str, float]
    wanted: list[str] = field(default_factory=list)

    def explain(self) -> str:
        lines = [f"held={self.held} after {self.after_s:.1f}s"]
        for wanted in self.wanted:
            figure = wanted.split()[0]
            lines.append(
                f"  {wanted}: before {self.baseline.get(figure)} now {self.last.get(figure)}"
            )
        if not self.held:  # the rest of the figures, for whoever reads a failure
            lines.append(
                "  every figure now: "
                + ", ".join(f"{k}={v:.4g}" for k, v in sorted(self.last.items()))
            )
        return "\n".join(lines)


def usable(figures: Mapping[str, float | None]) -> dict[str, float]:
    return {k: float(v) for k, v in figures.items() if v is not None}


def wait_for_signature(
    client: SandboxClient, signature: Signature, baseline: Mapping[str, float]
) -> Observation:
    """Polls the sandbox's figures until every expectation holds, or the stated time passes."""
    started = time.monotonic()
    deadline = started + signature.within_seconds
    figures: dict[str, float] = {}
    while True:
        figures = usable(client.figures())
        if signature.holds(figures, baseline):
            return Observation(
                True,
                time.monotonic() - started,
                dict(baseline),
                figures,
                [e.describe() for e in signature.expectations],
            )
        if time.monotonic() >= deadline:
            return Observation(
                False,
                time.monotonic() - started,
                dict(baseline),
                figures,
                [e.describe() for e in signature.expectations],
            )
        time.sleep(POLL_S)


def warm_up(client: SandboxClient, scenario: Scenario) -> dict[str, float]:
    client.load(rate_rps=scenario.load_rps, **scenario.load_mix)
    time.sleep(WARM_UP_S)
    return usable(client.figures())


def run_scenario(client: SandboxClient, scenario: Scenario) -> tuple[dict[str, float], Observation]:
    baseline = warm_up(client, scenario)
    client.scenario_enable(scenario.slug)
    return baseline, wait_for_signature(client, scenario.signature, baseline)


def scenario_showing(
    client: SandboxClient, scenario: Scenario, baseline: Mapping[str, float]
) -> Observation:
    """After a figures window, waits (up to the scenario's stated time) for its signature
    to show again, and "before the mitigation" is read then: a figure read at a random
    moment may have dipped (an error ratio of 0 between two failed reads), and "half of
    before" then cannot hold. Some signatures pass (disk-full's worker stops failing once
    its messages are spent): if it does not show again, the last reading stands."""
    time.sleep(SETTLE_S)
    return wait_for_signature(client, scenario.signature, baseline)


def run_mitigation(
    client: SandboxClient, scenario: Scenario, mitigation: str, before: Mapping[str, float]
) -> Observation:
    effect = next(m for m in scenario.mitigations if m.mitigation == mitigation)
    client.mitigation_enable(mitigation)
    return wait_for_signature(client, effect.signature, before)


if __name__ == "__main__":
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from sandbox.catalog import SCENARIOS

    wanted = sys.argv[1:] or list(SCENARIOS)
    for slug in wanted:
        scenario = SCENARIOS[slug]
        run_dir = Path(tempfile.mkdtemp(prefix=f"sig-{slug}-"))
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox.runtime",
                "--run-dir",
                str(run_dir),
                "--base-port",
                "18000",
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            client = SandboxClient(f"unix://{run_dir}/control.sock")
            for _ in range(100):
                try:
                    if client.health().get("ready"):
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            baseline, seen = run_scenario(client, scenario)
            print(f"{slug}: scenario {seen.explain()}", flush=True)
            for effect in scenario.mitigations:
                showing = scenario_showing(client, scenario, baseline)
                seen = run_mitigation(client, scenario, effect.mitigation, showing.last)
                print(f"{slug}: mitigation {effect.mitigation} {seen.explain()}", flush=True)
                client.mitigation_disable(effect.mitigation)
        finally:
            process.terminate()
            process.wait(20)


# -- the whole check of one scenario, as the catalog tests and the benchmark run it


@dataclass
class CatalogCheck:
    """What holding one scenario (and its mitigations) to its signature found."""

    slug: str
    problems: list[str] = field(default_factory=list)
    skipped: str = ""
    seconds_to_signature: float | None = None

    @property
    def passed(self) -> bool:
        return not self.problems and not self.skipped


def catalog_check(client: SandboxClient, scenario: Scenario, limits_via: str) -> CatalogCheck:
    """Warm up, enable, wait for the signature; then each mitigation must do what it says;
    then every declared metric must be in the exposition. Before each change the
    expectation must not already hold, or the check would prove nothing."""
    check = CatalogCheck(scenario.slug)
    if "cpu-limit" in scenario.extra_requirements and not limits_via.startswith("cgroup"):
        check.skipped = (
            "this machine gives sandboxes no CPU quota (no usable cgroup): the starvation "
            "this scenario teaches cannot happen without one"
        )
        return check
    baseline = warm_up(client, scenario)
    if scenario.signature.holds(baseline, baseline):
        check.problems.append(f"the signature holds before {scenario.slug} is on: {baseline}")
        return check
    client.scenario_enable(scenario.slug)
    seen = wait_for_signature(client, scenario.signature, baseline)
    if not seen.held:
        check.problems.append(f"{scenario.slug} did not show its signature:\n{seen.explain()}")
        return check
    check.seconds_to_signature = seen.after_s
    for number, effect in enumerate(scenario.mitigations):
        # Each mitigation answers the scenario on its own: the one before it is off again,
        # and "before" is read as the scenario shows again (see `scenario_showing`).
        if number:
            client.mitigation_disable(scenario.mitigations[number - 1].mitigation)
        before = scenario_showing(client, scenario, baseline).last
        if effect.signature.holds(before, before):
            check.problems.append(f"{effect.mitigation} holds before it is on: {before}")
            continue
        seen = run_mitigation(client, scenario, effect.mitigation, before)
        if not seen.held:
            check.problems.append(
                f"{effect.mitigation} did not answer {scenario.slug}:\n{seen.explain()}"
            )
    # The last mitigation stays on: switching it off may restart a service, which would
    # then be missing from the exposition read below.
    samples = {
        line.split("{")[0].split(" ")[0]
        for line in client.metrics().splitlines()
        if line and line[0] != "#"
    }
    for metric in scenario.metrics:
        names = (
            {metric.name, f"{metric.name}_bucket"} if metric.type == "histogram" else {metric.name}
        )
        if not names & samples:
            check.problems.append(
                f"{scenario.slug} declares {metric.name}, which the sandbox does not expose"
            )
    return check
