"""The hops into a service, as its process serves them: which hops, how their toxics are
set (and refused), and what they report."""

import io

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sandbox.services.hops import HopTable
from sandbox.telemetry import LogRing, ServiceMetrics
from sandbox.topology import HOPS, SERVICES, Topology, hop_callee, hop_name


def table(callee: str = "inventory") -> tuple[HopTable, ServiceMetrics]:
    metrics = ServiceMetrics(callee)
    logs = LogRing(callee, stream=io.StringIO())
    return HopTable(Topology(), callee, metrics, logs), metrics


def test_every_hop_is_served_by_exactly_the_service_it_leads_to():
    topology = Topology()
    served = [hop for service in SERVICES for hop, _, _ in topology.hops_into(service)]
    assert sorted(served) == sorted(hop_name(c, d) for c, d in HOPS)
    for service in SERVICES:
        for hop, listen, upstream in topology.hops_into(service):
            assert hop_callee(hop) == service
            assert upstream == (topology.host, topology.service_port(service))
            assert listen == (topology.host, topology.hop_port(*hop[4:].split("->")))
    assert topology.hops_into("loadgen") == topology.hops_into("worker") == []


def test_toxics_are_set_on_the_hop_and_reported_under_the_service_that_serves_it():
    hops, metrics = table()
    status, body = hops.put({"hop:orders->inventory": {"latency_ms": 250, "partition": True}})
    assert status == 200
    assert body["hop:orders->inventory"]["latency_ms"] == 250
    toxics = hops.proxy.hop("hop:orders->inventory").toxics
    assert (toxics.latency_ms, toxics.partition) == (250, True)
    assert hops.proxy.hop("hop:gateway->inventory").toxics.latency_ms == 0  # the others kept
    hops.publish()
    reported = {
        (sample.labels["service"], sample.labels["hop"], sample.labels["toxic"]): sample.value
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        if family.name == "sdlab_hop_toxic"
        for sample in family.samples
    }
    assert reported[("inventory", "hop:orders->inventory", "latency_ms")] == 250
    assert reported[("inventory", "hop:orders->inventory", "partition")] == 1
    assert reported[("inventory", "hop:worker->inventory", "latency_ms")] == 0
    assert {hop for _, hop, _ in reported} == {
        "hop:gateway->inventory",
        "hop:orders->inventory",
        "hop:worker->inventory",
    }


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"hop:gateway->cache": {"latency_ms": 10}}, "unknown hop hop:gateway->cache"),
        ({"hop:orders->inventory": {"latency": 10}}, "unknown knobs on hop:orders->inventory"),
        ({"hop:orders->inventory": {"latency_ms": -5}}, "latency_ms must be a number from 0"),
        ({"hop:orders->inventory": {"loss_percent": 101}}, "loss_percent must be a number"),
        ({"hop:orders->inventory": {"latency_ms": "slow"}}, "latency_ms must be a number"),
        ({"hop:orders->inventory": {"partition": "false"}}, "partition must be true or false"),
        ({"hop:orders->inventory": {"timeout": 1}}, "timeout must be true or false"),
        ({"hop:orders->inventory": 5}, "knobs must be an object"),
        (["hop:orders->inventory"], "the body must be an object"),
    ],
)
def test_bad_toxics_are_refused_naming_what_was_wrong_and_change_nothing(body, named):
    hops, _ = table()
    hops.put({"hop:worker->inventory": {"jitter_ms": 7}})
    before = {hop: dict(knobs) for hop, knobs in hops.knobs.items()}
    # a good hop beside the bad one is not applied either
    good = {"hop:gateway->inventory": {"latency_ms": 99}}
    given = {**good, **body} if isinstance(body, dict) else body
    status, answer = hops.put(given)
    assert status == 422
    assert named in answer["message"]
    assert hops.knobs == before
    assert hops.proxy.hop("hop:gateway->inventory").toxics.latency_ms == 0
    assert hops.proxy.hop("hop:worker->inventory").toxics.jitter_ms == 7
