"""Check evaluation over frames: durations, resets, state and events, passed once."""

import pytest

from apps.tutorials.checks import StepChecker, quiz_answer

METRIC = {
    "id": "slow",
    "type": "metric",
    "spec": {"figure": "inventory.p50_ms", "op": ">", "value": 300, "for_seconds": 3},
}
SCENARIO = {"id": "on", "type": "scenario", "spec": {"slug": "fixed-latency", "enabled": True}}
EVENT = {"id": "ev", "type": "event", "spec": {"what": "mitigation enabled", "slug": "timeouts"}}
QUIZ = {
    "id": "q",
    "type": "quiz",
    "spec": {
        "question": "?",
        "multiple": False,
        "choices": [
            {"text": "a", "correct": True, "explanation": "yes"},
            {"text": "b", "correct": False, "explanation": "no"},
        ],
    },
}


def frame(at: float, p50: float | None = None, **rest):
    figures = {} if p50 is None else {"inventory.p50_ms": p50}
    return {"at": at, "figures": figures, **rest}


def test_a_metric_must_hold_for_its_duration_and_a_break_starts_it_again():
    checker = StepChecker([METRIC])
    assert checker.feed_all([frame(0, 400), frame(1, 400), frame(2, 100)]) == []
    assert checker.feed_all([frame(3, 400), frame(4, 400), frame(5, 400)]) == []
    assert checker.feed(frame(6, 400)) == ["slow"]
    assert checker.feed(frame(7, 50)) == []  # passed stays passed, reported once
    assert checker.done


def test_missing_or_nan_figures_do_not_hold():
    checker = StepChecker([METRIC])
    assert checker.feed_all([frame(0), frame(10, float("nan")), frame(20)]) == []


def test_scenario_and_event_checks_read_the_sandbox_state():
    checker = StepChecker([SCENARIO, EVENT, QUIZ])
    assert checker.feed(frame(0, scenarios={})) == []
    assert checker.feed(frame(1, scenarios={"fixed-latency": {"delay_ms": 1}})) == ["on"]
    other = {"what": "mitigation enabled", "mitigation": "bulkhead"}
    assert checker.feed(frame(2, events=[other])) == []
    mine = {"what": "mitigation enabled", "mitigation": "timeouts"}
    assert checker.feed(frame(3, events=[other, mine])) == ["ev"]
    assert checker.done  # the quiz is the learner's, not telemetry's


def test_quiz_answers_with_explanations_and_bad_choices_refused():
    assert quiz_answer(QUIZ, [0]) == (True, ["yes"])
    assert quiz_answer(QUIZ, [1]) == (False, ["no"])
    with pytest.raises(ValueError, match="one answer"):
        quiz_answer(QUIZ, [0, 1])
    with pytest.raises(ValueError, match="choose one"):
        quiz_answer(QUIZ, [7])
