"""For every scenario in the catalog: a real sandbox, real load, the scenario on, and its
signature holds within its stated time; then each mitigation changes it as it claims.
Before each change the expectation must not already hold, or the test would prove nothing."""

import pytest

from sandbox.catalog import SCENARIOS
from tests.sandbox.signatures import run_mitigation, usable, wait_for_signature, warm_up


@pytest.mark.xdist_group("sandbox-signatures")  # one heavy sandbox at a time per run
@pytest.mark.parametrize("slug", sorted(SCENARIOS))
def test_scenario_signature_and_mitigations(slug, start_sandbox):
    scenario = SCENARIOS[slug]
    handle, client = start_sandbox()
    if "cpu-limit" in scenario.extra_requirements and not handle.details["limits_via"].startswith(
        "cgroup"
    ):
        pytest.skip(
            "this machine gives sandboxes no CPU quota (no usable cgroup): the starvation "
            "this scenario teaches cannot happen without one"
        )

    baseline = warm_up(client, scenario)
    assert not scenario.signature.holds(baseline, baseline), (
        f"holds before {slug} is on: {baseline}"
    )
    client.scenario_enable(slug)
    seen = wait_for_signature(client, scenario.signature, baseline)
    assert seen.held, f"{slug} did not show its signature:\n{seen.explain()}"

    for effect in scenario.mitigations:
        before = usable(client.figures())
        assert not effect.signature.holds(before, before), (
            f"{effect.mitigation} holds before it is on"
        )
        seen = run_mitigation(client, scenario, effect.mitigation)
        assert seen.held, f"{effect.mitigation} did not answer {slug}:\n{seen.explain()}"

    # Every metric the scenario declares is in the sandbox's exposition, with a value.
    exposition = client.metrics()
    samples = {
        line.split("{")[0].split(" ")[0]
        for line in exposition.splitlines()
        if line and line[0] != "#"
    }
    for metric in scenario.metrics:
        names = (
            {metric.name, f"{metric.name}_bucket"} if metric.type == "histogram" else {metric.name}
        )
        assert names & samples, f"{slug} declares {metric.name}, which the sandbox does not expose"
