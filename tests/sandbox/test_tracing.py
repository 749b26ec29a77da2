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
