"""With a collector address, every hop of a user's request is a span of one trace,
exported by OTLP (here to a real receiver on loopback; the sandbox runs unisolated so it
can reach it, as a docker or kubernetes sandbox reaches its collector)."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sandbox.client import SandboxClient
from tests.support.otlp import otlp_receiver
from tests.support.servers import wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_spans_cross_every_hop_in_one_trace():
    run_dir = Path(tempfile.mkdtemp(prefix="sdltr-", dir="/tmp"))
    with otlp_receiver() as receiver:
        env = {
            **os.environ,
            "SANDBOX_OTLP_ENDPOINT": receiver.endpoint,
            "SANDBOX_CACHE_DIR": str(run_dir / "cache"),
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox.runtime",
                "--run-dir",
                str(run_dir),
                "--base-port",
                str(20000 + (os.getpid() % 100) * 200),
                "--load-rps",
                "10",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client = SandboxClient(f"unix://{run_dir}/control.sock")

            def ready() -> bool:
                try:
                    return bool(client.health().get("ready"))
                except OSError:
                    return False

            wait_for(ready, "the sandbox to start")

            def order_traced_end_to_end() -> bool:
                services_by_trace: dict[str, set[str]] = {}
                for span in list(receiver.spans):
                    services_by_trace.setdefault(span["trace_id"], set()).add(span["service"])
                return any(
                    {"sandbox-loadgen", "sandbox-gateway", "sandbox-orders", "sandbox-inventory"}
                    <= services
                    for services in services_by_trace.values()
                )

            wait_for(order_traced_end_to_end, "one order traced from the user to inventory")
        finally:
            process.terminate()
            process.wait(30)
    names = {span["name"] for span in receiver.spans}
    assert "POST /orders" in names
    assert any(name.startswith("user ") for name in names)


def test_an_isolated_sandbox_keeps_its_spans_for_the_control_plane(start_sandbox):
    """No route out of the sandbox: the supervisor keeps the spans, the control plane
    collects them through the control socket and forwards them to the collector."""
    from sandbox.traces import traces_forward

    _, client = start_sandbox(load_rps=10, traces=True)
    with otlp_receiver() as receiver:
        since = 0

        def forwarded_an_order_trace() -> bool:
            nonlocal since
            since = traces_forward(client, receiver.endpoint, since)
            services_by_trace: dict[str, set[str]] = {}
            for span in list(receiver.spans):
                services_by_trace.setdefault(span["trace_id"], set()).add(span["service"])
            return any(
                {"sandbox-gateway", "sandbox-orders", "sandbox-inventory"} <= s
                for s in services_by_trace.values()
            )

        wait_for(
            forwarded_an_order_trace,
            "an order's spans to reach the collector through the control plane",
        )
    assert since > 0
    assert client.request("GET", f"/traces?since={since}")["next"] >= since


def test_without_traces_the_sandbox_keeps_none(sandbox):
    _, client = sandbox
    answer = client.request("GET", "/traces")
    assert answer == {"enabled": False, "batches": [], "next": 0}
