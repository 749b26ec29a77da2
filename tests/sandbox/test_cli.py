"""The sandbox works without the platform: list the catalog, run one, watch, clean up."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.__main__ import render
from sandbox.backends.base import SandboxSpec
from sandbox.catalog import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sandbox", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )


def test_list_scenarios_shows_the_catalog():
    result = cli("list-scenarios")
    assert result.returncode == 0
    for slug in SCENARIOS:
        assert slug in result.stdout
    listed = json.loads(cli("list-scenarios", "--json").stdout)
    assert {s["slug"] for s in listed} == set(SCENARIOS)
    assert all(s["signature"]["expectations"] for s in listed)


def test_list_scenarios_into_a_closed_pipe_ends_quietly():
    shell = f"{sys.executable} -m sandbox list-scenarios | head -1"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stdout.splitlines()) == 1


def test_figures_read_as_plain_numbers():
    figures = {"users.p50_ms": 3750.4, "inventory.rps": 81.14, "users.success_ratio": 0.9531}
    line = render({**figures, "queue.depth": 0.0}, {"scenarios": {"retry-storm": {}}})
    assert "p50 ms 3750 |" in line
    assert "inv/s 81.1 |" in line
    assert "ok 0.953 |" in line
    assert "queue 0 |" in line
    assert "e+" not in line
    assert "scenarios: retry-storm" in line


def test_run_unknown_scenario_is_refused_before_anything_starts():
    result = cli("run", "--scenario", "no-such-thing", "--duration", "1")
    assert result.returncode == 2
    assert "unknown scenario 'no-such-thing'" in result.stderr


def test_run_shows_figures_and_ctrl_c_removes_everything(tmp_path):
    root = Path("/tmp") / f"sdlcli-{os.getpid()}"
    env = {**os.environ, "SANDBOX_ROOT": str(root)}
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "run", "--scenario", "retry-storm", "--load-rps", "10"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while not any("scenarios: retry-storm" in line for line in lines):
            if time.monotonic() >= deadline:  # a bound on the loop, not a speed check
                raise TimeoutError("".join(lines))
            line = process.stdout.readline()  # type: ignore[union-attr]
            assert line, "".join(lines)
            lines.append(line)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "sandbox stopped and removed" in rest
    assert list(root.iterdir()) == []
    root.rmdir()


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"session_id": "Bad Id"}, "session_id must be"),
        ({"session_id": "ok", "ttl_seconds": 1}, "ttl_seconds"),
        ({"session_id": "ok", "load_rps": 1000}, "load_rps"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_field(fields, fragment):
    with pytest.raises(ValueError, match=fragment):
        SandboxSpec(**fields)
