"""The tutorial content format: the shipped content reads, and every kind of bad file is
refused with its path, its line and what is wrong."""

from pathlib import Path

import pytest

from apps.tutorials.content import ContentError, tutorial_read, tutorials_read

CONTENT = Path(__file__).resolve().parents[2] / "apps" / "tutorials" / "content"

INDEX = """---
series: observability
title: A tutorial
level: beginner
minutes: 10
lab:
  scenarios: [fixed-latency]
---
Introduction.
"""

STEP = """---
title: A step
checks:
  - {type: metric, figure: users.p99_ms, op: "<", value: 100, for_seconds: 5}
---
Do something.
"""


def folder(tmp_path: Path, index: str = INDEX, **steps: str) -> Path:
    root = tmp_path / "a-tutorial"
    root.mkdir()
    (root / "tutorial.md").write_text(index)
    for name, text in (steps or {"01-first": STEP}).items():
        (root / f"{name}.md").write_text(text)
    return root


def refused(path: Path) -> ContentError:
    with pytest.raises(ContentError) as caught:
        tutorial_read(path)
    return caught.value


def test_the_shipped_tutorials_read():
    tutorials = tutorials_read(CONTENT)
    assert tutorials
    first = next(t for t in tutorials if t.slug == "slow-dependency")
    # observe, inject and find, mitigate, verify: each step waits for the one before
    assert [(s.slug, s.depends_on) for s in first.steps] == [
        ("observe", ()),
        ("find", ("observe",)),
        ("hide", ("find",)),
        ("verify", ("hide",)),
    ]
    hide = {c.id: c for c in first.steps[2].checks}
    assert hide["mitigated"].spec == {"slug": "longer-cache-ttl", "enabled": True}
    assert first.steps[1].solution[0]["parameters"] == {"delay_ms": 400}
    quiz = next(c for c in first.steps[0].checks if c.type == "quiz")
    assert [c["correct"] for c in quiz.spec["choices"]] == [True, False]


def test_a_valid_folder_reads(tmp_path):
    tutorial = tutorial_read(folder(tmp_path))
    assert tutorial.scenarios == (("fixed-latency", {}),)
    assert tutorial.steps[0].checks[0].spec == {
        "figure": "users.p99_ms",
        "op": "<",
        "value": 100.0,
        "for_seconds": 5,
    }


@pytest.mark.parametrize(
    ("step", "line", "message"),
    [
        ("title: no front matter\n", 1, "front matter must open the file"),
        ("---\ntitle: [unclosed\n---\nText\n", 3, "not valid YAML"),
        ("---\ntitle: x\n---\nText\n", 2, "at least one check"),
        (
            "---\ntitle: x\nchecks:\n"
            "  - {type: metric, figure: nowhere, op: '<', value: 1}\n---\nT\n",
            4,
            "“nowhere” is not a figure",
        ),
        (
            "---\ntitle: x\nchecks:\n  - type: scenario\n    slug: no-such-thing\n---\nT\n",
            5,
            "unknown scenario “no-such-thing”",
        ),
        (
            "---\ntitle: x\nchecks:\n  - type: quiz\n    question: Q?\n    choices:\n"
            "      - {text: a, explanation: e}\n      - {text: b, explanation: e}\n---\nT\n",
            6,
            "exactly one correct choice",
        ),
        (
            "---\ntitle: x\ndepends_on: [later]\nchecks:\n  - {type: event, what: x}\n---\nT\n",
            3,
            "“later” is not an earlier step",
        ),
        (
            "---\ntitle: x\nchecks:\n  - {type: event, what: x}\nhints:\n  - {text: h}\n---\nT\n",
            6,
            "after_seconds” or “after_attempts",
        ),
        (
            "---\ntitle: x\nchecks:\n  - {type: event, what: x}\nsolution:\n"
            "  - {action: scenario, slug: fixed-latency, parameters: {delay_ms: 999999}}\n---\nT\n",
            6,
            "fixed-latency: delay_ms",
        ),
        (
            "---\ntitle: x\nchecks:\n"
            "  - {type: metric, figure: users.p99_ms, op: '=', value: 1}\n---\nT\n",
            4,
            "“op” must be one of",
        ),
        ("---\ntitle: x\nchecks:\n  - {type: event, what: x}\n---\n", 2, "no text for the learner"),
        (
            "---\ntitle: x\nchecks:\n  - {type: event, what: x}\nsolution:\n"
            "  - {action: load, rate_rps: 20, hot_key_ratio: 1.5}\n---\nT\n",
            6,
            "“hot_key_ratio” must be from 0 to 1",
        ),
    ],
)
def test_bad_steps_are_refused_with_file_line_and_reason(tmp_path, step, line, message):
    error = refused(folder(tmp_path, **{"01-first": step}))
    assert error.path.name == "01-first.md"
    assert error.line == line, error
    assert message in error.message
    assert str(error).startswith(f"{error.path}:{line}: ")


@pytest.mark.parametrize(
    ("index", "line", "message"),
    [
        (INDEX.replace("observability", "astrology"), 2, "series must be one of"),
        (INDEX.replace("minutes: 10", "minutes: ten"), 5, "“minutes” must be"),
        (INDEX.replace("level: beginner\n", ""), 2, "“level” is missing"),
        (INDEX.replace("[fixed-latency]", "[{fixed-latency: {delay_ms: 0}}]"), 7, "delay_ms"),
    ],
)
def test_bad_tutorial_files_are_refused(tmp_path, index, line, message):
    error = refused(folder(tmp_path, index=index))
    assert error.path.name == "tutorial.md"
    assert error.line == line, error
    assert message in error.message


def test_a_folder_without_steps_or_index_and_a_binary_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "needs a tutorial.md" in refused(empty).message
    (empty / "tutorial.md").write_text(INDEX)
    assert "has no steps" in refused(empty).message
    (empty / "01-bad.md").write_bytes(b"\xff\xfe\x00binary")
    assert "not UTF-8" in refused(empty).message


def test_a_later_step_may_depend_on_an_earlier_one(tmp_path):
    later = STEP.replace("title: A step", "title: Later\ndepends_on: [first]")
    tutorial = tutorial_read(folder(tmp_path, **{"01-first": STEP, "02-later": later}))
    assert tutorial.steps[1].depends_on == ("first",)


def test_a_load_action_may_set_the_mix_of_requests(tmp_path):
    step = STEP.replace(
        "---\nDo", "solution:\n  - {action: load, rate_rps: 30, hot_key_ratio: 0.7}\n---\nDo"
    )
    tutorial = tutorial_read(folder(tmp_path, **{"01-first": step}))
    assert tutorial.steps[0].solution == (
        {"action": "load", "rate_rps": 30.0, "hot_key_ratio": 0.7},
    )
