"""The fault proxy in front of a service: the hops that lead to it, served by its own
event loop (`sandbox.proxy`), their toxics set through its `/_hops` endpoint.

A proxy process of its own cost every hop two more process wake-ups a request (caller to
proxy, proxy to callee, and back): on a small machine a tenth of a sandbox's CPU. In the
callee's process the hop is still a real TCP hop with the same toxics; the bytes cross
from the hop's socket to the service's without the process going back to sleep.
"""

from __future__ import annotations

from typing import Any

from sandbox.knobs import HOP_KNOBS
from sandbox.proxy import FaultProxy, Toxics
from sandbox.telemetry import LogRing, ServiceMetrics
from sandbox.topology import Topology

HOP_SERIES_PREFIX = "sdlab_hop_"  # read by scrapes of /metrics, not by the sandbox's figures


def toxics_from_knobs(knobs: dict[str, Any]) -> Toxics:
    """A hop's knobs as toxics; a value of the wrong type or out of bounds raises
    ValueError naming the knob."""
    numbers = {}
    for name in (
        "latency_ms",
        "jitter_ms",
        "bandwidth_kbps",
        "loss_percent",
        "reset_percent",
        "limit_bytes",
        "reset_response_percent",
    ):
        value = knobs[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number, got {value!r}")
        numbers[name] = float(value)
    for name in ("timeout", "partition"):
        if not isinstance(knobs[name], bool):
            raise ValueError(f"{name} must be true or false, got {knobs[name]!r}")
    return Toxics(
        latency_ms=numbers["latency_ms"],
        jitter_ms=numbers["jitter_ms"],
        bandwidth_kbps=numbers["bandwidth_kbps"],
        loss_percent=numbers["loss_percent"],
        reset_percent=numbers["reset_percent"],
        timeout=knobs["timeout"],
        partition=knobs["partition"],
        limit_bytes=numbers["limit_bytes"],
        reset_response_percent=numbers["reset_response_percent"],
    )


class HopTable:
    """The hops into one service: their listeners, toxics (as knobs) and figures."""

    def __init__(
        self, topology: Topology, callee: str, metrics: ServiceMetrics, logs: LogRing
    ) -> None:
        hops = topology.hops_into(callee)
        self.service = callee
        self.proxy = FaultProxy(hops)
        self.knobs: dict[str, dict[str, Any]] = {
            hop: {k: v.default for k, v in HOP_KNOBS.items()} for hop, _, _ in hops
        }
        self.logs = logs
        labels = ["service", "hop"]
        self.connections = metrics.gauge(
            "sdlab_hop_connections", "Connections opened through a hop (total).", labels
        )
        self.active = metrics.gauge(
            "sdlab_hop_connections_active", "Connections open through a hop.", labels
        )
        self.bytes = metrics.gauge(
            "sdlab_hop_bytes",
            "Bytes carried by a hop (total), by direction.",
            [*labels, "direction"],
        )
        self.resets = metrics.gauge(
            "sdlab_hop_resets", "Connections reset by a hop (total).", labels
        )
        self.cut = metrics.gauge(
            "sdlab_hop_cut_responses",
            "Responses a hop cut short (total), by how: close (byte limit) or reset.",
            [*labels, "how"],
        )
        self.toxic = metrics.gauge(
            "sdlab_hop_toxic", "A toxic's setting on a hop (0 = off).", [*labels, "toxic"]
        )
        self.publish()

    async def start(self) -> None:
        await self.proxy.start()

    async def stop(self) -> None:
        await self.proxy.stop()

    def put(self, given: Any) -> tuple[int, dict[str, Any]]:
        """Body: {hop name: {knob: value}}. Every hop is checked before any changes: a bad
        one answers 422 naming it and changes nothing. Returns (status, body)."""
        if not isinstance(given, dict):
            return 422, {"message": "the body must be an object of hop name to knobs"}
        staged: dict[str, Toxics] = {}
        for hop, knobs in given.items():
            if hop not in self.knobs:
                known = ", ".join(sorted(self.knobs))
                return 422, {"message": f"unknown hop {hop} (hops into {self.service}: {known})"}
            if not isinstance(knobs, dict):
                return 422, {"message": f"{hop}: knobs must be an object"}
            unknown = sorted(set(knobs) - set(HOP_KNOBS))
            if unknown:
                return 422, {"message": f"unknown knobs on {hop}: {', '.join(unknown)}"}
            try:
                staged[hop] = toxics_from_knobs({**self.knobs[hop], **knobs})
            except ValueError as exc:
                return 422, {"message": f"{hop}: {exc}"}
        for hop, toxics in staged.items():
            if self.knobs[hop] != {**self.knobs[hop], **given[hop]}:
                self.logs.log("info", "toxics changed", hop=hop, toxics=given[hop])
            self.knobs[hop].update(given[hop])
            self.proxy.set_toxics(hop, toxics)
        return 200, self.knobs

    def publish(self) -> None:
        """Brings the hops' figures up to date (before /_metrics is rendered)."""
        service = self.service
        for hop, stats in self.proxy.stats().items():
            self.connections.labels(service, hop).set(stats.get("connections_total", 0))
            self.active.labels(service, hop).set(stats.get("connections_active", 0))
            self.bytes.labels(service, hop, "upstream").set(stats.get("bytes_upstream", 0))
            self.bytes.labels(service, hop, "downstream").set(stats.get("bytes_downstream", 0))
            self.resets.labels(service, hop).set(stats.get("resets_total", 0))
            self.cut.labels(service, hop, "close").set(stats.get("limited_total", 0))
            self.cut.labels(service, hop, "reset").set(stats.get("reset_responses_total", 0))
            for toxic, value in self.knobs[hop].items():
                self.toxic.labels(service, hop, toxic).set(float(value))
