"""Who talks to whom inside a sandbox, and on which loopback ports.

Every hop between two services goes through the fault proxy: a caller connects to the
hop's port, where the callee's process serves the hop's proxy (`sandbox.services.hops`),
which forwards to the callee's own port.
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICES = ("gateway", "orders", "inventory", "cache", "queue", "worker", "loadgen")
# Services that serve HTTP to other services (the worker and loadgen only call out; they
# still serve /_health, /_metrics and /_knobs to the supervisor).
HOPS = (
    ("loadgen", "gateway"),
    ("gateway", "cache"),
    ("gateway", "inventory"),
    ("gateway", "orders"),
    ("orders", "inventory"),
    ("orders", "queue"),
    ("worker", "queue"),
    ("worker", "inventory"),
)


def hop_name(caller: str, callee: str) -> str:
    return f"hop:{caller}->{callee}"


def hop_callee(name: str) -> str:
    """The service a hop leads to: "hop:orders->inventory" -> "inventory"."""
    return name.rpartition("->")[2]


@dataclass(frozen=True)
class Topology:
    """Ports are fixed inside an isolated sandbox (its loopback is its own); without
    isolation `base_port` moves the whole block so sandboxes do not collide."""

    base_port: int = 17000
    host: str = "127.0.0.1"

    def service_port(self, service: str) -> int:
        return self.base_port + SERVICES.index(service)

    def hop_port(self, caller: str, callee: str) -> int:
        return self.base_port + 100 + HOPS.index((caller, callee))

    @property
    def trace_port(self) -> int:
        """Where the supervisor takes the services' spans (OTLP/HTTP) when it keeps them."""
        return self.base_port + 60

    def dependency_url(self, caller: str, callee: str) -> str:
        return f"http://{self.host}:{self.hop_port(caller, callee)}"

    def dependencies(self, caller: str) -> list[str]:
        return [callee for c, callee in HOPS if c == caller]

    def hops(self) -> list[tuple[str, tuple[str, int], tuple[str, int]]]:
        return [
            (
                hop_name(caller, callee),
                (self.host, self.hop_port(caller, callee)),
                (self.host, self.service_port(callee)),
            )
            for caller, callee in HOPS
        ]

    def hops_into(self, callee: str) -> list[tuple[str, tuple[str, int], tuple[str, int]]]:
        """The hops the callee's process serves: those that lead to it."""
        return [hop for hop in self.hops() if hop_callee(hop[0]) == callee]

    def targets(self) -> list[str]:
        return [*SERVICES, *(hop_name(c, d) for c, d in HOPS)]

    def describe(self) -> dict:
        return {
            "services": list(SERVICES),
            "hops": [{"from": c, "to": d, "name": hop_name(c, d)} for c, d in HOPS],
        }
