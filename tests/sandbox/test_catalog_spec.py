"""Every scenario is a complete lesson: the build fails when one lacks a part."""

import math

import pytest

from sandbox.catalog import MITIGATIONS, SCENARIOS
from sandbox.engine import Engine, UnknownSlug
from sandbox.spec import (
    CATEGORIES,
    Explanation,
    Parameter,
    ParameterError,
    Scenario,
    parameters_validate,
)
from sandbox.topology import Topology

FIRST_SIXTEEN = {
    "fixed-latency",
    "variable-latency",
    "error-burst",
    "intermittent-5xx",
    "cpu-spike",
    "memory-leak",
    "disk-full",
    "circuit-breaker",
    "retry-storm",
    "connection-pool-exhaustion",
    "network-partition",
    "clock-skew",
    "resource-starvation",
    "algorithmic-degradation",
    "slow-db-query",
    "cache-stampede",
}
FIGURE_PREFIXES = (
    "users.",
    "gateway.",
    "orders.",
    "inventory.",
    "cache.",
    "queue.",
    "worker.",
    "loadgen.",
    "sandbox.",
)


def test_the_catalog_holds_the_first_sixteen():
    assert set(SCENARIOS) >= FIRST_SIXTEEN


def test_every_category_holds_at_least_five_scenarios():
    counts = dict.fromkeys(CATEGORIES, 0)
    for scenario in SCENARIOS.values():
        counts[scenario.category] += 1
    assert all(count >= 5 for count in counts.values()), counts
    assert len(SCENARIOS) >= 50


@pytest.mark.parametrize("slug", sorted(SCENARIOS))
def test_scenario_spec_is_complete(slug):
    scenario = SCENARIOS[slug]
    assert scenario.category in CATEGORIES
    assert scenario.title.strip()
    assert len(scenario.teaches) > 30, "say what it teaches"
    assert scenario.parameters, "a scenario has at least one parameter"
    for parameter in scenario.parameters:
        if parameter.kind in ("int", "float"):
            assert parameter.minimum is not None
            assert parameter.maximum is not None
            assert parameter.minimum <= parameter.default <= parameter.maximum
        assert parameter.help.strip()
    assert scenario.metrics, "declare the metrics it adds or moves"
    for metric in scenario.metrics:
        assert metric.name.startswith("sdlab_")
        assert metric.help.strip()
    assert scenario.signature.expectations
    assert 0 < scenario.signature.within_seconds <= 60
    for expectation in scenario.signature.expectations:
        assert expectation.figure.startswith(FIGURE_PREFIXES)
    assert scenario.mitigations, "at least one mitigation answers it"
    for effect in scenario.mitigations:
        assert effect.mitigation in MITIGATIONS
        assert effect.signature.expectations
        assert 0 < effect.signature.within_seconds <= 60
    assert_explained(scenario)


def assert_explained(scenario: Scenario) -> None:
    """A page of explanation in five parts, each saying something."""
    explanation = scenario.explanation
    assert explanation is not None, f"{scenario.slug} has no explanation"
    for name, heading in Explanation.SECTIONS:
        value = getattr(explanation, name)
        if name == "further_reading":
            assert len(value) >= 2, f"{scenario.slug}: give at least two readings"
            assert all(len(item.strip()) > 10 for item in value)
        else:
            assert len(value.split()) >= 15, f"{scenario.slug}: “{heading}” is too thin"
    assert "<" not in explanation.markdown(), "explanations are Markdown, not HTML"


@pytest.mark.parametrize("slug", sorted(SCENARIOS))
def test_scenario_knobs_exist_on_the_sandbox(slug):
    """apply() with its defaults names only real targets and knobs (engine refuses typos)."""
    engine = Engine(Topology(), SCENARIOS, MITIGATIONS)
    engine.scenario_enable(slug)
    for effect in SCENARIOS[slug].mitigations:
        engine.mitigation_enable(effect.mitigation)
    effective = engine.effective()
    assert effective["loadgen"]["rate_rps"] >= 0


def test_out_of_bounds_parameter_names_itself_and_its_bounds():
    engine = Engine(Topology(), SCENARIOS, MITIGATIONS)
    with pytest.raises(ParameterError) as caught:
        engine.scenario_enable("fixed-latency", {"delay_ms": 99_999})
    assert caught.value.parameter == "delay_ms"
    assert caught.value.message == "delay_ms must be between 1 and 5000 ms, not 99999"
    assert engine.active_scenarios == {}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("fast", "must be a number"),
        (True, "must be a number"),
        (1.5, "whole number"),
        (math.nan, "must be a number between"),
        (math.inf, "must be between"),
        (-1, "must be between 1 and 5000 ms"),
    ],
)
def test_bad_parameter_values_are_refused(value, fragment):
    parameter = Parameter("delay_ms", "int", 200, "delay", 1, 5000, unit="ms")
    with pytest.raises(ParameterError, match=fragment):
        parameter.validate(value)


def test_unknown_parameters_and_slugs_are_refused():
    with pytest.raises(ParameterError, match="unknown parameter speed"):
        parameters_validate(SCENARIOS["fixed-latency"].parameters, {"speed": 3})
    engine = Engine(Topology(), SCENARIOS, MITIGATIONS)
    with pytest.raises(UnknownSlug, match="unknown scenario 'nope'"):
        engine.scenario_enable("nope")
    with pytest.raises(UnknownSlug, match="unknown mitigation 'nope'"):
        engine.mitigation_enable("nope")


def test_two_scenarios_at_once_behave_as_both():
    engine = Engine(Topology(), SCENARIOS, MITIGATIONS)
    engine.scenario_enable("fixed-latency", {"delay_ms": 100})
    engine.scenario_enable("intermittent-5xx", {"error_ratio": 0.2})
    engine.scenario_enable("cache-stampede", {"ttl_s": 1, "recompute_ms": 50})
    inventory = engine.effective()["inventory"]
    assert inventory["delay_ms"] == 150  # delays add up
    assert inventory["error_ratio"] == 0.2
    engine.scenario_disable("fixed-latency")
    assert engine.effective()["inventory"]["delay_ms"] == 50


def test_a_mitigation_wins_over_the_scenario_it_answers():
    engine = Engine(Topology(), SCENARIOS, MITIGATIONS)
    engine.scenario_enable("slow-db-query")
    assert engine.effective()["inventory"]["db_index"] is False
    engine.mitigation_enable("index")
    assert engine.effective()["inventory"]["db_index"] is True


def test_every_mitigation_has_a_summary_and_valid_defaults():
    for mitigation in MITIGATIONS.values():
        assert mitigation.summary.strip()
        parameters_validate(mitigation.parameters, {})
