"""The tutorial content format, read and checked before anything is stored.

A tutorial is a folder: `tutorial.md` (front matter: series, title, level, minutes, the
lab it starts with; body: the introduction) and one Markdown file per step, in name
order (`01-observe.md`, `02-inject.md`, ...), each with front matter for its checks,
hints and hidden solution. Every problem is reported with its file, its line and what
is wrong, and nothing is returned unless the whole folder is valid.

    ---
    title: Find the slow dependency
    depends_on: [observe]
    checks:
      - {type: metric, figure: inventory.p99_ms, op: ">", value: 300, for_seconds: 5}
      - {type: scenario, slug: fixed-latency, enabled: true}
      - type: quiz
        question: Which service is slow?
        choices:
          - {text: inventory, correct: true, explanation: Its p99 rose first.}
          - {text: cache, explanation: Its latency did not move.}
    hints:
      - {after_seconds: 120, text: Compare each service's p99.}
    solution:
      - {action: scenario, slug: fixed-latency, enabled: true, parameters: {delay_ms: 400}}
    ---
    Markdown for the learner...
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sandbox.catalog import MITIGATIONS, SCENARIOS
from sandbox.spec import ParameterError, parameters_validate
from sandbox.topology import SERVICES

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
LEVELS = ("beginner", "intermediate", "advanced")
SERIES = {
    "caching": "Caching",
    "databases": "Databases",
    "apis-networks": "APIs and networks",
    "concurrency": "Concurrency",
    "resilience": "Resilience patterns",
    "observability": "Observability",
}
OPS = ("<", "<=", ">", ">=")
FIGURE = re.compile(r"^(?P<service>[a-z]+)\.(?P<what>[a-z0-9_]+)$")
FIGURE_SOURCES = (*SERVICES, "users", "sandbox")
CHECK_TYPES = ("metric", "scenario", "mitigation", "event", "quiz")
ACTIONS = ("scenario", "mitigation", "load", "wait")
LOAD_MIX = ("read_ratio", "search_ratio", "hot_key_ratio")


class ContentError(Exception):
    """One problem in a content file: where, and what is wrong."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Check:
    id: str
    type: str
    spec: dict[str, Any]  # the check's own fields, validated for its type
    points: int = 1
    message: str = ""


@dataclass(frozen=True)
class Hint:
    text: str
    after_seconds: int | None = None
    after_attempts: int | None = None


@dataclass(frozen=True)
class Step:
    slug: str
    title: str
    body: str
    checks: tuple[Check, ...]
    hints: tuple[Hint, ...] = ()
    solution: tuple[dict[str, Any], ...] = ()
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tutorial:
    slug: str
    series: str
    title: str
    level: str
    minutes: int
    summary: str
    body: str
    scenarios: tuple[tuple[str, dict[str, Any]], ...]
    steps: tuple[Step, ...] = field(default_factory=tuple)


# ------------------------------------------------------------------ reading a file
class _Document:
    """A Markdown file with YAML front matter, remembering where each key was written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ContentError(path, 1, "the file is not UTF-8 text") from None
        if not text.startswith("---\n"):
            raise ContentError(path, 1, "front matter must open the file with a line '---'")
        end = text.find("\n---\n", 4)
        if end < 0:
            raise ContentError(path, 1, "front matter is not closed by a line '---'")
        self.body = text[end + 5 :].strip()
        source = text[4 : end + 1]
        try:
            self.node = yaml.compose(source, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(source) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = (mark.line + 2) if mark is not None else 1
            reason = getattr(exc, "problem", None) or str(exc)
            raise ContentError(path, line, f"front matter is not valid YAML: {reason}") from None
        if not isinstance(self.data, dict):
            raise ContentError(path, 2, "front matter must be a mapping of keys to values")

    def line_of(self, *keys: str | int) -> int:
        """The file line where the value at `keys` was written (its parent's, if absent)."""
        node = self.node
        line = 2
        for key in keys:
            found = None
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if k.value == key:
                        found = v
                        line = k.start_mark.line + 2
                        break
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(key, int)
                and key < len(node.value)
            ):
                found = node.value[key]
                line = found.start_mark.line + 2
            if found is None:
                return line
            node = found
        return line

    def fail(self, message: str, *keys: str | int) -> ContentError:
        return ContentError(self.path, self.line_of(*keys), message)

    def require(self, key: str, kind: type | tuple[type, ...], what: str) -> Any:
        if key not in self.data:
            raise self.fail(f"“{key}” is missing: {what}")
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise self.fail(f"“{key}” must be {what}", key)
        return value


# ------------------------------------------------------------------ checks
def _figure_checked(doc: _Document, name: Any, *keys: str | int) -> str:
    matched = FIGURE.match(str(name))
    if matched is None or matched["service"] not in FIGURE_SOURCES:
        raise doc.fail(
            f"“{name}” is not a figure: write <service>.<what>, with a service among "
            f"{', '.join(FIGURE_SOURCES)} (for example inventory.p99_ms)",
            *keys,
        )
    return str(name)


def _number(doc: _Document, value: Any, what: str, *keys: str | int) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise doc.fail(f"{what} must be a number", *keys)
    return float(value)


def _check(doc: _Document, raw: Any, index: int, step: str) -> Check:
    at = ("checks", index)
    if not isinstance(raw, dict):
        raise doc.fail("each check must be a mapping with a “type”", *at)
    kind = raw.get("type")
    if kind not in CHECK_TYPES:
        raise doc.fail(f"check type must be one of {', '.join(CHECK_TYPES)}, not “{kind}”", *at)
    check_id = str(raw.get("id") or f"{step}-{index + 1}")
    if not SLUG.match(check_id):
        raise doc.fail(f"check id “{check_id}” must be lowercase letters, digits, hyphens", *at)
    points = raw.get("points", 1)
    if isinstance(points, bool) or not isinstance(points, int) or not 0 <= points <= 100:
        raise doc.fail("“points” must be a whole number from 0 to 100", *at, "points")
    spec: dict[str, Any]
    if kind == "metric":
        op = raw.get("op")
        if op not in OPS:
            raise doc.fail(f"“op” must be one of {' '.join(OPS)}", *at, "op")
        seconds = raw.get("for_seconds", 5)
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= 600:
            raise doc.fail("“for_seconds” must be a whole number from 1 to 600", *at, "for_seconds")
        spec = {
            "figure": _figure_checked(doc, raw.get("figure"), *at, "figure"),
            "op": op,
            "value": _number(doc, raw.get("value"), "“value”", *at, "value"),
            "for_seconds": seconds,
        }
    elif kind in ("scenario", "mitigation"):
        known: dict[str, Any] = SCENARIOS if kind == "scenario" else MITIGATIONS
        slug = raw.get("slug")
        if slug not in known:
            raise doc.fail(f"unknown {kind} “{slug}”", *at, "slug")
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            raise doc.fail("“enabled” must be true or false", *at, "enabled")
        spec = {"slug": slug, "enabled": enabled}
    elif kind == "event":
        what = raw.get("what")
        if not isinstance(what, str) or not what.strip():
            raise doc.fail("an event check needs “what” (e.g. scenario enabled)", *at, "what")
        spec = {"what": what.strip(), **({"slug": raw["slug"]} if "slug" in raw else {})}
    else:
        spec = _quiz(doc, raw, at)
    return Check(check_id, str(kind), spec, points, str(raw.get("message") or ""))


def _quiz(doc: _Document, raw: dict[str, Any], at: tuple[str | int, ...]) -> dict[str, Any]:
    question = raw.get("question")
    if not isinstance(question, str) or not question.strip():
        raise doc.fail("a quiz needs a “question”", *at, "question")
    choices = raw.get("choices")
    if not isinstance(choices, list) or len(choices) < 2:
        raise doc.fail("a quiz needs at least two “choices”", *at, "choices")
    parsed = []
    for n, choice in enumerate(choices):
        if not isinstance(choice, dict) or not str(choice.get("text") or "").strip():
            raise doc.fail("each choice needs a “text”", *at, "choices", n)
        if not str(choice.get("explanation") or "").strip():
            raise doc.fail("each choice needs an “explanation”", *at, "choices", n)
        parsed.append(
            {
                "text": str(choice["text"]),
                "correct": bool(choice.get("correct", False)),
                "explanation": str(choice["explanation"]),
            }
        )
    correct = sum(1 for c in parsed if c["correct"])
    multiple = bool(raw.get("multiple", False))
    if correct == 0 or (correct > 1 and not multiple):
        raise doc.fail(
            "a single-choice quiz needs exactly one correct choice"
            if not multiple
            else "a quiz needs at least one correct choice",
            *at,
            "choices",
        )
    return {"question": question.strip(), "choices": parsed, "multiple": multiple}


def _solution(doc: _Document, raw: Any) -> tuple[dict[str, Any], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise doc.fail("“solution” must be a list of actions", "solution")
    actions = []
    for n, action in enumerate(raw):
        at = ("solution", n)
        if not isinstance(action, dict) or action.get("action") not in ACTIONS:
            raise doc.fail(f"each solution action is one of {', '.join(ACTIONS)}", *at)
        kind = action["action"]
        if kind in ("scenario", "mitigation"):
            catalog: dict[str, Any] = SCENARIOS if kind == "scenario" else MITIGATIONS
            slug = str(action.get("slug"))
            if slug not in catalog:
                raise doc.fail(f"unknown {kind} “{slug}”", *at, "slug")
            parameters = action.get("parameters") or {}
            try:
                parameters_validate(catalog[slug].parameters, parameters)
            except ParameterError as exc:
                raise doc.fail(f"{slug}: {exc.message}", *at, "parameters") from None
            actions.append(
                {
                    "action": kind,
                    "slug": slug,
                    "enabled": bool(action.get("enabled", True)),
                    "parameters": parameters,
                }
            )
        elif kind == "wait":
            seconds = _number(doc, action.get("seconds"), "“seconds”", *at, "seconds")
            if not 0 < seconds <= 120:
                raise doc.fail("a wait lasts more than 0 and at most 120 seconds", *at, "seconds")
            actions.append({"action": "wait", "seconds": seconds})
        else:
            rate = _number(doc, action.get("rate_rps"), "“rate_rps”", *at, "rate_rps")
            if not 0 <= rate <= 50:
                raise doc.fail("“rate_rps” must be from 0 to 50", *at, "rate_rps")
            load: dict[str, Any] = {"action": "load", "rate_rps": rate}
            # The mix of requests, as the sandbox's PUT /load takes it: shares from 0 to 1.
            for name in LOAD_MIX:
                if name in action:
                    share = _number(doc, action[name], f"“{name}”", *at, name)
                    if not 0 <= share <= 1:
                        raise doc.fail(f"“{name}” must be from 0 to 1", *at, name)
                    load[name] = share
            actions.append(load)
    return tuple(actions)


def _hints(doc: _Document, raw: Any) -> tuple[Hint, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise doc.fail("“hints” must be a list", "hints")
    hints = []
    for n, hint in enumerate(raw):
        at = ("hints", n)
        if not isinstance(hint, dict) or not str(hint.get("text") or "").strip():
            raise doc.fail("each hint needs a “text”", *at)
        seconds, attempts = hint.get("after_seconds"), hint.get("after_attempts")
        if seconds is None and attempts is None:
            raise doc.fail("a hint appears “after_seconds” or “after_attempts”", *at)
        for key, value in (("after_seconds", seconds), ("after_attempts", attempts)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise doc.fail(f"“{key}” must be a whole number of at least 1", *at, key)
        hints.append(Hint(str(hint["text"]).strip(), seconds, attempts))
    return tuple(hints)


# ------------------------------------------------------------------ a whole tutorial
def _step(path: Path, earlier: list[str]) -> Step:
    doc = _Document(path)
    slug = re.sub(r"^\d+-", "", path.stem)
    if not SLUG.match(slug):
        raise ContentError(path, 1, f"the file name must be NN-slug.md, not {path.name}")
    title = doc.require("title", str, "the step's title")
    raw_checks = doc.data.get("checks")
    if not isinstance(raw_checks, list) or not raw_checks:
        raise doc.fail("a step needs at least one check in “checks”", "checks")
    checks = tuple(_check(doc, raw, n, slug) for n, raw in enumerate(raw_checks))
    ids = [c.id for c in checks]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise doc.fail(f"check ids repeat: {', '.join(duplicates)}", "checks")
    depends = doc.data.get("depends_on") or []
    if not isinstance(depends, list):
        raise doc.fail("“depends_on” must be a list of earlier steps", "depends_on")
    for n, name in enumerate(depends):
        if name not in earlier:
            raise doc.fail(f"“{name}” is not an earlier step of this tutorial", "depends_on", n)
    if not doc.body:
        raise ContentError(path, doc.line_of("title"), "the step has no text for the learner")
    return Step(
        slug=slug,
        title=title.strip(),
        body=doc.body,
        checks=checks,
        hints=_hints(doc, doc.data.get("hints")),
        solution=_solution(doc, doc.data.get("solution")),
        depends_on=tuple(depends),
    )


def tutorial_read(folder: Path) -> Tutorial:
    """Reads and checks one tutorial folder; raises ContentError at the first problem."""
    folder = Path(folder)
    index = folder / "tutorial.md"
    if not index.is_file():
        raise ContentError(index, 1, "a tutorial folder needs a tutorial.md")
    doc = _Document(index)
    slug = folder.name
    if not SLUG.match(slug):
        raise ContentError(index, 1, f"the folder name “{slug}” must be a lowercase slug")
    series = doc.require("series", str, f"one of {', '.join(SERIES)}")
    if series not in SERIES:
        raise doc.fail(f"series must be one of {', '.join(SERIES)}, not “{series}”", "series")
    level = doc.require("level", str, f"one of {', '.join(LEVELS)}")
    if level not in LEVELS:
        raise doc.fail(f"level must be one of {', '.join(LEVELS)}, not “{level}”", "level")
    minutes = doc.require("minutes", int, "a whole number of minutes")
    if not 1 <= minutes <= 240:
        raise doc.fail("“minutes” must be from 1 to 240", "minutes")
    lab = doc.data.get("lab") or {}
    if not isinstance(lab, dict):
        raise doc.fail("“lab” must be a mapping with “scenarios”", "lab")
    scenarios = []
    for n, item in enumerate(lab.get("scenarios") or []):
        parameters: Any
        if isinstance(item, str):
            name, parameters = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            ((name, parameters),) = item.items()
        else:
            raise doc.fail(
                "a lab scenario is a slug or {slug: {parameters}}", "lab", "scenarios", n
            )
        if name not in SCENARIOS:
            raise doc.fail(f"unknown scenario “{name}”", "lab", "scenarios", n)
        try:
            parameters_validate(SCENARIOS[name].parameters, parameters or {})
        except ParameterError as exc:
            raise doc.fail(f"{name}: {exc.message}", "lab", "scenarios", n) from None
        scenarios.append((name, dict(parameters or {})))
    step_files = sorted(p for p in folder.glob("*.md") if p.name != "tutorial.md")
    if not step_files:
        raise ContentError(index, 1, "the tutorial has no steps (files like 01-observe.md)")
    steps: list[Step] = []
    for path in step_files:
        steps.append(_step(path, [s.slug for s in steps]))
    return Tutorial(
        slug=slug,
        series=series,
        title=doc.require("title", str, "the tutorial's title").strip(),
        level=level,
        minutes=minutes,
        summary=str(doc.data.get("summary") or "").strip(),
        body=doc.body,
        scenarios=tuple(scenarios),
        steps=tuple(steps),
    )


class ContentErrors(ContentError):
    """Problems in several tutorials: one per tutorial folder, all reported at once."""

    def __init__(self, errors: list[ContentError]) -> None:
        first = errors[0]
        super().__init__(first.path, first.line, first.message)
        self.errors = errors
        self.args = ("\n".join(str(e) for e in errors),)

    def __str__(self) -> str:
        return str(self.args[0])


def tutorials_read(root: Path) -> list[Tutorial]:
    """Every tutorial under `root` (one folder each), all checked: the first problem of
    each bad folder is reported, and nothing is returned unless all are valid."""
    tutorials, errors = [], []
    for folder in sorted(Path(root).iterdir()):
        if not folder.is_dir():
            continue
        try:
            tutorials.append(tutorial_read(folder))
        except ContentError as exc:
            errors.append(exc)
    if errors:
        raise ContentErrors(errors)
    return tutorials
