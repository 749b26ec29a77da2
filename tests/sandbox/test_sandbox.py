"""A real sandbox honours its contract: /health, /state, /metrics, scenarios and
mitigations switched at run time, clear refusals, logs with trace ids."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sandbox.client import SandboxError
from sandbox.topology import SERVICES, Topology
from tests.sandbox.conftest import sandbox_host_pids

WAIT_S = 20


def figures_after(client, seconds: float) -> dict:
    time.sleep(seconds)
    return client.figures()


def test_a_started_sandbox_is_ready_and_describes_itself(sandbox):
    handle, client = sandbox
    health = client.health()
    assert health["ready"] is True
    assert set(health["services"]) == set(SERVICES)
    state = client.state()
    assert state["session"] == handle.session_id
    assert {hop["name"] for hop in state["topology"]["hops"]} >= {
        "hop:orders->inventory",
        "hop:loadgen->gateway",
    }
    assert state["scenarios"] == {}
    assert state["expires_at"] > time.time()


def test_metrics_are_one_valid_exposition_with_red_metrics_of_every_service(sandbox):
    _, client = sandbox
    client.load(rate_rps=20)
    time.sleep(3)
    text = client.metrics()
    families = {
        f.name: f for f in text_string_to_metric_families(text)
    }  # raises on a bad exposition
    assert "sdlab_requests" in families
    assert "sdlab_request_duration_seconds" in families
    served = {s.labels["service"] for s in families["sdlab_requests"].samples if s.value > 0}
    assert {"gateway", "inventory", "cache"} <= served
    assert "sdlab_hop_connections" in families
    assert (
        text.count("# TYPE sdlab_requests_total counter")
        + text.count("# TYPE sdlab_requests counter")
        == 1
    )


def test_users_are_served_and_figures_say_so(sandbox):
    _, client = sandbox
    client.load(rate_rps=20)
    figures = figures_after(client, 8)
    assert figures["users.rps"] > 10
    assert figures["users.success_ratio"] > 0.95
    assert figures["gateway.rps"] > 10
    assert figures["worker.processed_rps"] > 0


def test_bad_requests_are_refused_with_what_was_wrong(sandbox):
    _, client = sandbox
    with pytest.raises(SandboxError) as caught:
        client.scenario_enable("retry-storm", {"delay_ms": 99_999})
    assert caught.value.status == 422
    assert caught.value.body["extra"]["parameter"] == "delay_ms"
    assert "between 50 and 5000 ms" in caught.value.message
    with pytest.raises(SandboxError) as caught:
        client.scenario_enable("no-such-thing")
    assert caught.value.status == 404
    with pytest.raises(SandboxError) as caught:
        client.request("POST", "/scenarios/retry-storm", ["not", "an", "object"])
    assert caught.value.status == 422
    with pytest.raises(SandboxError) as caught:
        client.load(rate_rps=10_000)
    assert caught.value.status == 422
    assert caught.value.body["extra"]["parameter"] == "rate_rps"
    with pytest.raises(SandboxError) as caught:
        client.request("GET", "/state?logs_since=yesterday")
    assert caught.value.status == 422
    assert caught.value.body["extra"]["parameter"] == "logs_since"
    assert client.state()["scenarios"] == {}  # nothing half-applied


def test_scenarios_and_mitigations_switch_at_run_time_and_leave_a_timeline(sandbox):
    _, client = sandbox
    client.scenario_enable("fixed-latency", {"delay_ms": 100})
    client.scenario_enable("intermittent-5xx", {"error_ratio": 0.2})
    client.mitigation_enable("retry-budget")
    state = client.state()
    assert state["scenarios"] == {
        "fixed-latency": {"delay_ms": 100},
        "intermittent-5xx": {"error_ratio": 0.2},
    }
    assert "retry-budget" in state["mitigations"]
    metrics = client.metrics()
    assert 'sdlab_scenario_active{scenario="fixed-latency"} 1' in metrics
    client.scenario_disable("fixed-latency")
    client.mitigation_disable("retry-budget")
    state = client.state()
    assert list(state["scenarios"]) == ["intermittent-5xx"]
    whats = [event["what"] for event in state["events"]]
    assert whats.count("scenario enabled") == 2
    assert "scenario disabled" in whats
    assert "mitigation disabled" in whats


def test_two_scenarios_at_once_show_both_signatures(sandbox):
    _, client = sandbox
    client.load(rate_rps=20)
    client.scenario_enable("fixed-latency", {"delay_ms": 150})
    client.scenario_enable("intermittent-5xx", {"error_ratio": 0.3})
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        figures = client.figures()
        if (figures.get("inventory.p50_ms") or 0) > 120 and (
            figures.get("inventory.error_ratio") or 0
        ) > 0.2:
            break
        time.sleep(1)
    assert figures["inventory.p50_ms"] > 120
    assert figures["inventory.error_ratio"] > 0.2


def test_logs_are_json_lines_with_trace_ids(sandbox):
    _, client = sandbox
    client.load(rate_rps=20)
    client.scenario_enable("circuit-breaker")
    time.sleep(4)
    lines = client.logs()
    warnings = [line for line in lines if line.get("message") == "request answered with an error"]
    assert warnings, lines[-5:]
    assert all(len(line["trace_id"]) == 32 for line in warnings)
    assert any(line.get("message") == "scenario enabled" for line in lines)
    # A watcher reads the state and the new lines in one request: the same lines, and
    # after the newest one's seq only lines that came later.
    state = client.state(logs_since=0)
    assert "figures" in state
    assert any(line.get("message") == "scenario enabled" for line in state["logs"])
    assert any(line.get("message") == "request answered with an error" for line in state["logs"])
    newest = max(int(line.get("seq", 0)) for line in state["logs"])
    assert newest > 0, state["logs"][-5:]  # service lines carry their seq
    later = client.state(logs_since=newest)["logs"]
    assert all(int(line["seq"]) > newest for line in later if "seq" in line)
    assert "logs" not in client.state()


def test_a_crashed_service_is_restarted(sandbox):
    handle, client = sandbox
    inside = client.state()["services"]["cache"]["pid"]  # a pid inside the sandbox's namespace
    os.kill(sandbox_host_pids(handle)[inside], signal.SIGKILL)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        services = client.state()["services"]
        if services["cache"]["restarts"] >= 1 and client.health()["ready"]:
            break
        time.sleep(0.2)
    assert services["cache"]["restarts"] == 1
    assert "signal 9" in services["cache"]["last_exit"]


def hop_toxic_of(client, hop: str, toxic: str) -> tuple[str, float] | None:
    """(the service reporting it, the value) of a toxic on a hop, off the merged /metrics."""
    for family in text_string_to_metric_families(client.metrics()):
        for sample in family.samples:
            labels = sample.labels
            if family.name == "sdlab_hop_toxic" and (labels["hop"], labels["toxic"]) == (
                hop,
                toxic,
            ):
                return labels["service"], sample.value
    return None


def test_a_restarted_service_gets_the_toxics_of_the_hops_leading_to_it_back(sandbox):
    """The hops into a service are served by its process: they die with it, and the
    supervisor sets their toxics again once it is back."""
    handle, client = sandbox
    client.scenario_enable("packet-loss", {"loss_percent": 30})
    assert hop_toxic_of(client, "hop:gateway->inventory", "loss_percent") == ("inventory", 30)
    inside = client.state()["services"]["inventory"]["pid"]
    os.kill(sandbox_host_pids(handle)[inside], signal.SIGKILL)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and client.state()["services"]["inventory"]["restarts"] < 1:
        time.sleep(0.2)
    assert client.state()["services"]["inventory"]["restarts"] == 1
    reported = hop_toxic_of(client, "hop:gateway->inventory", "loss_percent")
    while time.monotonic() < deadline and reported != ("inventory", 30):
        time.sleep(0.2)
        reported = hop_toxic_of(client, "hop:gateway->inventory", "loss_percent")
    assert reported == ("inventory", 30)
    client.scenario_disable("packet-loss")
    assert hop_toxic_of(client, "hop:gateway->inventory", "loss_percent") == ("inventory", 0)


def put_inside(sandbox, service: str, path: str, body: bytes) -> tuple[int, dict]:
    """A PUT to one service from inside the sandbox's own network: (status, JSON body)."""
    handle, client = sandbox
    inside = client.state()["services"][service]["pid"]
    port = Topology().service_port(service)
    code = (
        "import json, urllib.request, urllib.error\n"
        f"request = urllib.request.Request('http://127.0.0.1:{port}{path}', data={body!r},"
        " method='PUT', headers={'Content-Type': 'application/json'})\n"
        "try:\n"
        "    answer = urllib.request.urlopen(request, timeout=5)\n"
        "except urllib.error.HTTPError as error:\n"
        "    answer = error\n"
        "print(json.dumps([answer.status, json.loads(answer.read())]))\n"
    )
    done = subprocess.run(
        ["nsenter", "-t", str(sandbox_host_pids(handle)[inside]), "-n", sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
    )
    status, answer = json.loads(done.stdout)
    return status, answer


def test_hop_toxics_put_to_a_service_are_refused_with_the_reason_over_http(sandbox):
    """What the supervisor's own checks would never send still gets a clear 422 from the
    service, and changes nothing."""
    _, client = sandbox
    assert put_inside(sandbox, "worker", "/_hops", b"{}") == (
        422,
        {"message": "no hop leads to worker"},
    )
    assert put_inside(sandbox, "inventory", "/_hops", b"{not json") == (
        422,
        {"message": "the body is not JSON"},
    )
    status, answer = put_inside(
        sandbox,
        "inventory",
        "/_hops",
        json.dumps({"hop:orders->inventory": {"partition": "false"}}).encode(),
    )
    assert status == 422
    assert "partition must be true or false" in answer["message"]
    assert hop_toxic_of(client, "hop:orders->inventory", "partition") == ("inventory", 0)
    status, answer = put_inside(
        sandbox,
        "inventory",
        "/_hops",
        json.dumps({"hop:orders->inventory": {"latency_ms": 40}}).encode(),
    )
    assert status == 200
    assert answer["hop:orders->inventory"]["latency_ms"] == 40


def knobs_fingerprint_of(client, service: str) -> float:
    for family in text_string_to_metric_families(client.metrics()):
        for sample in family.samples:
            if sample.name == "sdlab_knobs_fingerprint" and sample.labels["service"] == service:
                return sample.value
    raise AssertionError(f"{service} reports no knobs fingerprint")


def test_a_service_whose_knobs_drift_gets_them_back(sandbox):
    """An update the supervisor believes delivered but the service lacks (a push lost to a
    timeout, or to a restart racing it) is put right by the supervisor's own check."""
    handle, client = sandbox
    client.scenario_enable("cpu-spike", {"cpu_ms": 2})
    intended = knobs_fingerprint_of(client, "inventory")
    inside = client.state()["services"]["inventory"]["pid"]
    host_pid = sandbox_host_pids(handle)[inside]
    assert client.state()["knob_resends"] == 0  # no false alarms in normal running
    port = Topology().service_port("inventory")  # inside the sandbox's own loopback
    # Behind the supervisor's back: set inventory's knobs from inside its network.
    body = json.dumps({"cpu_burn_ms": 40}).encode()
    drift = (
        "import urllib.request; urllib.request.urlopen(urllib.request.Request("
        f"'http://127.0.0.1:{port}/_knobs', data={body!r}, method='PUT',"
        " headers={'Content-Type': 'application/json'}), timeout=5).read()"
    )
    subprocess.run(["nsenter", "-t", str(host_pid), "-n", sys.executable, "-c", drift], check=True)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if client.state()["knob_resends"] >= 1:
            break
        time.sleep(0.5)
    assert client.state()["knob_resends"] >= 1
    while time.monotonic() < deadline and knobs_fingerprint_of(client, "inventory") != intended:
        time.sleep(0.5)
    assert knobs_fingerprint_of(client, "inventory") == intended


def test_a_reclaimed_connection_is_logged_with_the_query_that_leaked_it(sandbox):
    """reclaim-abandoned takes a leaked connection back once it has been held for its limit,
    never before, says which query leaked it, and does so with no request to trigger it."""
    _, client = sandbox
    client.load(rate_rps=20)
    client.scenario_enable("connection-leak", {"leak_ratio": 1.0})  # every query leaks
    client.mitigation_enable("reclaim-abandoned", {"after_ms": 300})
    deadline = time.monotonic() + WAIT_S
    reclaimed: list[dict] = []
    while time.monotonic() < deadline and not reclaimed:
        time.sleep(0.5)
        reclaimed = [
            line for line in client.logs() if line["message"] == "abandoned connection reclaimed"
        ]
    assert reclaimed, client.logs()[-5:]
    assert all(line["query"] in {"stock", "reserve", "ship", "search"} for line in reclaimed)
    assert all(line["held_ms"] >= 300 for line in reclaimed), reclaimed[:5]
    client.load(rate_rps=0)  # the pool empties of leaked connections on its own
    deadline = time.monotonic() + WAIT_S
    in_use = client.figures().get  # {} until the supervisor has two samples
    while time.monotonic() < deadline and in_use("inventory.pool_in_use") != 0:
        time.sleep(0.5)
        in_use = client.figures().get
    assert in_use("inventory.pool_in_use") == 0
