"""The fault proxy as a sandbox process: all hops in one loop, toxics set through the
same internal knobs endpoint as the services, its figures as Prometheus metrics."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from sandbox.knobs import HOP_KNOBS
from sandbox.proxy import FaultProxy, Toxics
from sandbox.telemetry import LogRing
from sandbox.topology import Topology


def toxics_from_knobs(knobs: dict[str, Any]) -> Toxics:
    return Toxics(
        latency_ms=float(knobs["latency_ms"]),
        jitter_ms=float(knobs["jitter_ms"]),
        bandwidth_kbps=float(knobs["bandwidth_kbps"]),
        loss_percent=float(knobs["loss_percent"]),
        reset_percent=float(knobs["reset_percent"]),
        timeout=bool(knobs["timeout"]),
        partition=bool(knobs["partition"]),
        limit_bytes=float(knobs["limit_bytes"]),
        reset_response_percent=float(knobs["reset_response_percent"]),
    )


class ProxyService:
    name = "proxy"

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.proxy = FaultProxy(topology.hops())
        self.knobs: dict[str, dict[str, Any]] = {
            hop: {k: v.default for k, v in HOP_KNOBS.items()} for hop, _, _ in topology.hops()
        }
        self.logs = LogRing("proxy")
        r = self.registry = CollectorRegistry(auto_describe=False)
        labels = ["service", "hop"]
        self.connections = Gauge(
            "sdlab_hop_connections", "Connections opened through a hop (total).", labels, registry=r
        )
        self.active = Gauge(
            "sdlab_hop_connections_active", "Connections open through a hop.", labels, registry=r
        )
        self.bytes = Gauge(
            "sdlab_hop_bytes",
            "Bytes carried by a hop (total), by direction.",
            [*labels, "direction"],
            registry=r,
        )
        self.resets = Gauge(
            "sdlab_hop_resets", "Connections reset by a hop (total).", labels, registry=r
        )
        self.cut = Gauge(
            "sdlab_hop_cut_responses",
            "Responses a hop cut short (total), by how: close (byte limit) or reset.",
            [*labels, "how"],
            registry=r,
        )
        self.toxic = Gauge(
            "sdlab_hop_toxic",
            "A toxic's setting on a hop (0 = off).",
            [*labels, "toxic"],
            registry=r,
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.get("/_health", self.health),
                web.get("/_metrics", self.metrics),
                web.put("/_knobs", self.set_knobs),
                web.get("/_knobs", self.get_knobs),
            ]
        )
        app.on_startup.append(self.start)
        app.on_cleanup.append(self.stop)
        return app

    async def start(self, _: web.Application) -> None:
        await self.proxy.start()

    async def stop(self, _: web.Application) -> None:
        await self.proxy.stop()

    async def health(self, _: web.Request) -> web.Response:
        return web.json_response({"service": "proxy", "ok": True})

    async def get_knobs(self, _: web.Request) -> web.Response:
        return web.json_response(self.knobs)

    async def set_knobs(self, request: web.Request) -> web.Response:
        """Body: {hop name: {knob: value}}; every hop is validated before any changes."""
        given = await request.json()
        staged: dict[str, Toxics] = {}
        for hop, knobs in given.items():
            if hop not in self.knobs:
                return web.json_response({"message": f"unknown hop {hop}"}, status=422)
            unknown = sorted(set(knobs) - set(HOP_KNOBS))
            if unknown:
                return web.json_response(
                    {"message": f"unknown knobs on {hop}: {', '.join(unknown)}"}, status=422
                )
            merged = {**self.knobs[hop], **knobs}
            try:
                staged[hop] = toxics_from_knobs(merged)
            except ValueError as exc:
                return web.json_response({"message": f"{hop}: {exc}"}, status=422)
        for hop, toxics in staged.items():
            if self.knobs[hop] != {**self.knobs[hop], **given[hop]}:
                self.logs.log("info", "toxics changed", hop=hop, toxics=given[hop])
            self.knobs[hop].update(given[hop])
            self.proxy.set_toxics(hop, toxics)
        return web.json_response(self.knobs)

    async def metrics(self, _: web.Request) -> web.Response:
        for hop, stats in self.proxy.stats().items():
            self.connections.labels("proxy", hop).set(stats.get("connections_total", 0))
            self.active.labels("proxy", hop).set(stats.get("connections_active", 0))
            self.bytes.labels("proxy", hop, "upstream").set(stats.get("bytes_upstream", 0))
            self.bytes.labels("proxy", hop, "downstream").set(stats.get("bytes_downstream", 0))
            self.resets.labels("proxy", hop).set(stats.get("resets_total", 0))
            self.cut.labels("proxy", hop, "close").set(stats.get("limited_total", 0))
            self.cut.labels("proxy", hop, "reset").set(stats.get("reset_responses_total", 0))
            for toxic, value in self.knobs[hop].items():
                self.toxic.labels("proxy", hop, toxic).set(float(value))
        return web.Response(body=generate_latest(self.registry), content_type="text/plain")
