"""Step checks evaluated against a sandbox's frames (what the relay sends each second).

A metric check passes once its condition has held for its duration; scenario and
mitigation checks once the sandbox reports that state; event checks once the event is in
the sandbox's timeline. A quiz is answered by the learner, not by telemetry. Once
passed, a check stays passed: results are recorded once.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
TELEMETRY = ("metric", "scenario", "mitigation", "event")


def _holds_now(check: Mapping[str, Any], frame: Mapping[str, Any]) -> bool:
    spec = check["spec"]
    kind = check["type"]
    if kind == "metric":
        value = (frame.get("figures") or {}).get(spec["figure"])
        if not isinstance(value, (int, float)) or math.isnan(value):
            return False
        return OPS[spec["op"]](float(value), float(spec["value"]))
    if kind in ("scenario", "mitigation"):
        active = frame.get("scenarios" if kind == "scenario" else "mitigations") or {}
        return (spec["slug"] in active) == bool(spec["enabled"])
    if kind == "event":
        for event in frame.get("events") or []:
            if event.get("what") != spec["what"]:
                continue
            slug = spec.get("slug")
            if slug is None or slug in (event.get("scenario"), event.get("mitigation")):
                return True
        return False
    return False


@dataclass
class StepChecker:
    """Feeds frames to one step's telemetry checks; remembers what passed, and when."""

    checks: Sequence[Mapping[str, Any]]
    passed: dict[str, float] = field(default_factory=dict)  # check id -> when it passed
    held_since: dict[str, float] = field(default_factory=dict)

    @property
    def telemetry_checks(self) -> list[Mapping[str, Any]]:
        return [c for c in self.checks if c["type"] in TELEMETRY]

    def feed(self, frame: Mapping[str, Any]) -> list[str]:
        """The ids of checks that passed with this frame (each reported once)."""
        at = float(frame.get("at") or 0.0)
        newly = []
        for check in self.telemetry_checks:
            check_id = check["id"]
            if check_id in self.passed:
                continue
            if not _holds_now(check, frame):
                self.held_since.pop(check_id, None)
                continue
            since = self.held_since.setdefault(check_id, at)
            needed = float(check["spec"].get("for_seconds", 0)) if check["type"] == "metric" else 0
            if at - since >= needed:
                self.passed[check_id] = at
                newly.append(check_id)
        return newly

    def feed_all(self, frames: Iterable[Mapping[str, Any]]) -> list[str]:
        return [check_id for frame in frames for check_id in self.feed(frame)]

    @property
    def done(self) -> bool:
        return all(c["id"] in self.passed for c in self.telemetry_checks)


def quiz_answer(check: Mapping[str, Any], chosen: list[int]) -> tuple[bool, list[str]]:
    """Whether the chosen answers are right, and the explanation of each chosen one."""
    choices = check["spec"]["choices"]
    if not chosen or any(not 0 <= n < len(choices) for n in chosen):
        raise ValueError("choose one of the answers")
    if not check["spec"]["multiple"] and len(chosen) > 1:
        raise ValueError("this question takes one answer")
    right = {n for n, c in enumerate(choices) if c["correct"]}
    return set(chosen) == right, [choices[n]["explanation"] for n in chosen]
