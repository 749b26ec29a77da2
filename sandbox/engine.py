"""The scenario engine: which scenarios and mitigations are on, with which parameters,
and the knobs that results in."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.knobs import KnobSettings, knob_settings_check, knobs_effective
from sandbox.spec import Mitigation, Scenario, parameters_validate
from sandbox.topology import Topology


class UnknownSlug(KeyError):
    def __init__(self, kind: str, slug: str, known: list[str]) -> None:
        super().__init__(slug)
        self.message = f"unknown {kind} {slug!r}; known: {', '.join(sorted(known))}"

    def __str__(self) -> str:
        return self.message


@dataclass
class Event:
    at: float
    what: str
    detail: dict[str, Any] = field(default_factory=dict)


class Engine:
    def __init__(
        self,
        topology: Topology,
        scenarios: Mapping[str, Scenario],
        mitigations: Mapping[str, Mitigation],
    ) -> None:
        self.topology = topology
        self.scenarios = scenarios
        self.mitigations = mitigations
        self.active_scenarios: dict[str, dict[str, Any]] = {}
        self.active_mitigations: dict[str, dict[str, Any]] = {}
        self.base: KnobSettings = {}
        self.events: list[Event] = []
        self.changes = 0  # every change is recorded: effective() recomputes after one
        self._effective: tuple[int, KnobSettings] | None = None

    def _record(self, what: str, **detail: Any) -> None:
        self.changes += 1
        self.events.append(Event(time.time(), what, detail))
        del self.events[:-200]

    def scenario_enable(
        self, slug: str, parameters: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        scenario = self.scenarios.get(slug)
        if scenario is None:
            raise UnknownSlug("scenario", slug, list(self.scenarios))
        values = parameters_validate(scenario.parameters, parameters)
        knob_settings_check(scenario.apply(values), self.topology.targets())
        changed = slug in self.active_scenarios
        self.active_scenarios[slug] = values
        self._record(
            "scenario changed" if changed else "scenario enabled", scenario=slug, parameters=values
        )
        return values

    def scenario_disable(self, slug: str) -> bool:
        if slug not in self.scenarios:
            raise UnknownSlug("scenario", slug, list(self.scenarios))
        if self.active_scenarios.pop(slug, None) is None:
            return False
        self._record("scenario disabled", scenario=slug)
        return True

    def mitigation_enable(
        self, slug: str, parameters: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        mitigation = self.mitigations.get(slug)
        if mitigation is None:
            raise UnknownSlug("mitigation", slug, list(self.mitigations))
        values = parameters_validate(mitigation.parameters, parameters)
        knob_settings_check(mitigation.apply(values), self.topology.targets())
        self.active_mitigations[slug] = values
        self._record("mitigation enabled", mitigation=slug, parameters=values)
        return values

    def mitigation_disable(self, slug: str) -> bool:
        if slug not in self.mitigations:
            raise UnknownSlug("mitigation", slug, list(self.mitigations))
        if self.active_mitigations.pop(slug, None) is None:
            return False
        self._record("mitigation disabled", mitigation=slug)
        return True

    def set_base(self, settings: KnobSettings) -> None:
        """Knobs the operator sets directly (load rate...), below scenarios and mitigations."""
        knob_settings_check(settings, self.topology.targets())
        for target, knobs in settings.items():
            self.base.setdefault(target, {}).update(knobs)
        self._record("load changed", settings=settings)

    def effective(self) -> KnobSettings:
        """What every target runs with; callers read it, never change it."""
        if self._effective is not None and self._effective[0] == self.changes:
            return self._effective[1]
        owners = [self.base]
        owners += [self.scenarios[s].apply(p) for s, p in self.active_scenarios.items()]
        # Mitigations come last: where a knob combines as "last", the answer wins.
        owners += [self.mitigations[m].apply(p) for m, p in self.active_mitigations.items()]
        self._effective = (self.changes, knobs_effective(owners, self.topology.targets()))
        return self._effective[1]

    def state(self) -> dict[str, Any]:
        return {
            "scenarios": {slug: dict(p) for slug, p in self.active_scenarios.items()},
            "mitigations": {slug: dict(p) for slug, p in self.active_mitigations.items()},
            "events": [{"at": e.at, "what": e.what, **e.detail} for e in self.events[-50:]],
        }
