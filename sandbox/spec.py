"""What a scenario and a mitigation are: data the platform can show, validate and test.

A scenario is a spec (this module) plus the code that injects it (`apply`). Its
`signature` says which figure of the sandbox moves which way within how many seconds; the
catalog tests start a real sandbox and hold every scenario to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox.knobs import KnobSettings

CATEGORIES = {
    "caching": "Caching and consistency",
    "database": "Database",
    "network": "API and network",
    "concurrency": "Concurrency",
    "latency": "Latency and timeouts",
    "http": "HTTP failures",
    "resources": "Resource exhaustion",
    "resilience": "Resilience patterns",
    "infrastructure": "Infrastructure",
    "performance": "Performance",
}


class ParameterError(ValueError):
    """A parameter value was refused; `parameter` names it, the message says why."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: Literal["int", "float", "bool", "choice"]
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""

    def __post_init__(self) -> None:
        if self.kind in ("int", "float") and (self.minimum is None or self.maximum is None):
            raise ValueError(f"numeric parameter {self.name!r} needs both bounds")
        if self.kind == "choice" and self.default not in self.choices:
            raise ValueError(f"parameter {self.name!r}: default not among its choices")
        self.validate(self.default)

    def bounds_text(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false"
        unit = f" {self.unit}" if self.unit else ""
        return f"between {self.minimum:g} and {self.maximum:g}{unit}"

    def validate(self, value: Any) -> Any:
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ParameterError(self.name, f"{self.name} must be true or false")
            return value
        if self.kind == "choice":
            if value not in self.choices:
                raise ParameterError(self.name, f"{self.name} must be {self.bounds_text()}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise ParameterError(self.name, f"{self.name} must be a number {self.bounds_text()}")
        if not (self.minimum <= value <= self.maximum):  # type: ignore[operator]
            raise ParameterError(
                self.name, f"{self.name} must be {self.bounds_text()}, not {value:g}"
            )
        if self.kind == "int" and not float(value).is_integer():
            raise ParameterError(
                self.name, f"{self.name} must be a whole number {self.bounds_text()}"
            )
        return int(value) if self.kind == "int" else float(value)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "default": self.default,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "choices": list(self.choices),
            "unit": self.unit,
            "bounds": self.bounds_text(),
            "help": self.help,
        }


def parameters_validate(
    parameters: tuple[Parameter, ...], given: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Defaults overlaid with `given`, each validated; unknown names are refused too."""
    known = {p.name: p for p in parameters}
    given = dict(given or {})
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ParameterError(
            unknown[0],
            f"unknown parameter {unknown[0]}; known: {', '.join(known) or 'none'}",
        )
    return {name: p.validate(given.get(name, p.default)) for name, p in known.items()}


@dataclass(frozen=True)
class MetricSpec:
    """A metric a scenario adds, declared so dashboards need no code per scenario."""

    name: str
    type: Literal["counter", "gauge", "histogram"]
    help: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Expectation:
    """One figure moving one way: `figure` compared with `value`, or with baseline*ratio."""

    figure: str
    op: Literal[">", "<"]
    value: float | None = None
    ratio: float | None = None  # relative to the figure's value before the change...
    relative_to: str | None = None  # ...or to another figure's current value

    def holds(self, figures: Mapping[str, float], baseline: Mapping[str, float]) -> bool:
        current = figures.get(self.figure)
        if current is None or math.isnan(current):
            return False
        bound = self.bound(figures if self.relative_to else baseline)
        if bound is None:
            return False
        return current > bound if self.op == ">" else current < bound

    def bound(self, baseline: Mapping[str, float]) -> float | None:
        if self.ratio is None:
            return self.value
        before = baseline.get(self.relative_to or self.figure)
        if before is None or math.isnan(before):
            return None
        scaled = before * self.ratio
        # An absolute floor keeps "3x of nothing" from passing on noise.
        return max(scaled, self.value) if self.value is not None and self.op == ">" else scaled

    def describe(self) -> str:
        if self.relative_to is not None:
            return f"{self.figure} {self.op} {self.ratio:g} x {self.relative_to}"
        if self.ratio is not None:
            floor = f" (and {self.op} {self.value:g})" if self.value is not None else ""
            return f"{self.figure} {self.op} {self.ratio:g} x before{floor}"
        return f"{self.figure} {self.op} {self.value:g}"


@dataclass(frozen=True)
class Signature:
    """What a learner sees: every expectation holds within `within_seconds`."""

    expectations: tuple[Expectation, ...]
    within_seconds: float
    description: str

    def holds(self, figures: Mapping[str, float], baseline: Mapping[str, float]) -> bool:
        return all(e.holds(figures, baseline) for e in self.expectations)


Apply = Callable[[Mapping[str, Any]], KnobSettings]


@dataclass(frozen=True)
class Explanation:
    """A page a learner reads, in five parts, each Markdown (rendered without raw HTML)."""

    what_happens: str
    why: str
    what_to_look_at: str
    how_systems_answer: str
    further_reading: tuple[str, ...]  # Markdown links, one per item

    SECTIONS = (
        ("what_happens", "What happens"),
        ("why", "Why"),
        ("what_to_look_at", "What to look at"),
        ("how_systems_answer", "How real systems answer it"),
        ("further_reading", "Further reading"),
    )

    def sections(self) -> list[tuple[str, str]]:
        """(heading, Markdown) in reading order; further reading as a list."""
        out = []
        for name, heading in self.SECTIONS:
            value = getattr(self, name)
            text = "\n".join(f"- {item}" for item in value) if name == "further_reading" else value
            out.append((heading, text.strip()))
        return out

    def markdown(self) -> str:
        return "\n\n".join(f"## {heading}\n\n{text}" for heading, text in self.sections())


@dataclass(frozen=True)
class Mitigation:
    slug: str
    title: str
    summary: str
    apply: Apply
    parameters: tuple[Parameter, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "title": self.title,
            "summary": self.summary,
            "parameters": [p.describe() for p in self.parameters],
        }


@dataclass(frozen=True)
class MitigationEffect:
    """With the scenario on, turning `mitigation` on makes `signature` hold."""

    mitigation: str
    signature: Signature


@dataclass(frozen=True)
class Scenario:
    slug: str
    category: str
    title: str
    teaches: str
    parameters: tuple[Parameter, ...]
    apply: Apply
    metrics: tuple[MetricSpec, ...]
    signature: Signature
    mitigations: tuple[MitigationEffect, ...]
    explanation: Explanation | None = None
    # Load that makes the signature visible: simulated users per second, and their mix
    # (read_ratio, search_ratio, hot_key_ratio) where the lesson needs another one.
    load_rps: float = 20.0
    load_mix: dict[str, float] = field(default_factory=dict)
    # What the machine must give the sandbox for the signature to show ("cpu-limit").
    extra_requirements: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "category": self.category,
            "category_title": CATEGORIES[self.category],
            "title": self.title,
            "teaches": self.teaches,
            "explanation": self.explanation.markdown() if self.explanation else "",
            "parameters": [p.describe() for p in self.parameters],
            "metrics": [
                {"name": m.name, "type": m.type, "help": m.help, "labels": list(m.labels)}
                for m in self.metrics
            ],
            "signature": {
                "description": self.signature.description,
                "within_seconds": self.signature.within_seconds,
                "expectations": [e.describe() for e in self.signature.expectations],
            },
            "mitigations": [m.mitigation for m in self.mitigations],
            "load": {"rate_rps": self.load_rps, **self.load_mix},
        }
