"""A sandbox is contained: a leak at its maximum is stopped by the sandbox's own limit
while the host and a neighbour carry on; its processes live in a network namespace with
nothing but loopback; stopping it (from any process) leaves nothing behind; it stops
itself at the end of its TTL; the backend's list() finds sandboxes a crash orphaned."""

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.backends.base import SandboxStatus
from sandbox.backends.local import LocalBackend, end_reason
from sandbox.isolation import Limits
from tests.sandbox.conftest import sandbox_host_pids
from tests.support.servers import wait_for

WAIT_S = 60


def oom_kills(handle) -> int:
    total = 0
    for directory in handle.details["cgroup"]["dirs"]:
        control = Path(directory) / "memory.oom_control"
        if control.exists():
            pairs = dict(line.split() for line in control.read_text().splitlines())
            total += int(pairs.get("oom_kill", 0))
        events = Path(directory) / "memory.events"
        if events.exists():
            pairs = dict(line.split() for line in events.read_text().splitlines())
            total += int(pairs.get("oom_kill", 0))
    return total


def test_memory_leak_at_its_maximum_is_stopped_by_the_sandbox_limit(start_sandbox):
    leaky, client = start_sandbox(
        limits=Limits(memory_bytes=256 * 2**20, cpu_millicores=1000, max_pids=128)
    )
    _, neighbour_client = start_sandbox()
    # Without cgroups each process is capped instead (RLIMIT_AS): the leaking one fails.
    limit = "RLIMIT_AS" if leaky.details["limits_via"] == "rlimit" else "cgroup"
    client.load(rate_rps=50)
    client.scenario_enable("memory-leak", {"leak_kb": 4096})

    def leaker_was_stopped():
        gateway = client.state()["services"]["gateway"]
        return gateway["restarts"] >= 1 and gateway["last_exit"]

    how = wait_for(leaker_was_stopped, f"the {limit} limit to stop the leaking gateway")
    assert "signal 9" in how or "exited" in how
    if limit == "cgroup":
        assert oom_kills(leaky) >= 1
    # The sandbox itself lives on (its supervisor restarted the service) and so does its neighbour.
    assert client.health()["ready"]
    assert neighbour_client.health()["ready"]
    assert neighbour_client.state()["services"]["gateway"]["restarts"] == 0
    # And the host can still allocate what the leak could not.
    assert len(bytearray(300 * 2**20)) == 300 * 2**20


def test_sandbox_processes_see_only_their_own_loopback(sandbox):
    handle, _ = sandbox
    host_net = os.readlink("/proc/self/ns/net")
    pids = sandbox_host_pids(handle)
    assert len(pids) >= 8  # the supervisor and seven services
    for pid in pids.values():
        assert os.readlink(f"/proc/{pid}/ns/net") != host_net
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
        interfaces = {line.split(":")[0].strip() for line in lines}
        assert interfaces == {"lo"}
        routes = Path(f"/proc/{pid}/net/route").read_text().splitlines()[1:]
        assert routes == []  # no way out: not even a default route


def test_two_sandboxes_do_not_share_a_network(start_sandbox):
    first, _ = start_sandbox()
    second, _ = start_sandbox()
    first_net = {os.readlink(f"/proc/{p}/ns/net") for p in sandbox_host_pids(first).values()}
    second_net = {os.readlink(f"/proc/{p}/ns/net") for p in sandbox_host_pids(second).values()}
    assert len(first_net) == 1
    assert first_net.isdisjoint(second_net)


def test_limits_are_those_of_the_spec(start_sandbox):
    handle, _ = start_sandbox(
        limits=Limits(memory_bytes=300 * 2**20, cpu_millicores=700, max_pids=96)
    )
    if handle.details["limits_via"] != "cgroup-v1":
        pytest.skip(
            f"this machine limits sandboxes by {handle.details['limits_via']}; the v2 and rlimit "
            "files are checked by tests/sandbox/test_isolation.py"
        )
    dirs = [Path(d) for d in handle.details["cgroup"]["dirs"]]
    values = {}
    for directory in dirs:
        for name in ("memory.limit_in_bytes", "pids.max", "cpu.cfs_quota_us"):
            if (directory / name).exists():
                values[name] = (directory / name).read_text().strip()
    assert values["memory.limit_in_bytes"] == str(300 * 2**20)
    assert values["pids.max"] == "96"
    assert values.get("cpu.cfs_quota_us", "70000") == "70000"


def test_stopping_from_another_process_leaves_no_process_namespace_or_cgroup(
    backend, start_sandbox
):
    handle, client = start_sandbox()
    client.load(rate_rps=10)
    pids = sandbox_host_pids(handle)
    namespace = os.readlink(f"/proc/{next(iter(pids.values()))}/ns/pid")
    cgroup_dirs = [Path(d) for d in (handle.details["cgroup"] or {}).get("dirs", [])]

    elsewhere = LocalBackend(root=backend.root)  # another worker: it never started this sandbox
    assert handle.sandbox_id in {h.sandbox_id for h in elsewhere.list()}
    elsewhere.stop(handle)

    for pid in pids.values():
        with contextlib.suppress(OSError):  # gone, as it should be
            assert os.readlink(f"/proc/{pid}/ns/pid") != namespace
    still_there = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "pid") == namespace:
                    still_there.append(entry.name)
            except OSError:
                continue
    assert still_there == []
    assert not any(d.exists() for d in cgroup_dirs)
    assert not Path(handle.details["run_dir"]).exists()
    assert elsewhere.status(handle) == SandboxStatus.STOPPED
    backend.running.pop(handle.sandbox_id, None)  # its Popen is reaped by the fixture's backend


def test_a_sandbox_stops_itself_when_its_ttl_ends(backend, start_sandbox):
    handle, _ = start_sandbox(ttl_seconds=10)
    assert backend.status(handle) == SandboxStatus.RUNNING
    wait_for(
        lambda: backend.status(handle) == SandboxStatus.EXPIRED, "the TTL to end the sandbox", 40
    )
    assert end_reason(handle) == "expired"
    backend.stop(handle)
    assert backend.status(handle) == SandboxStatus.STOPPED


def test_a_spec_with_a_bad_scenario_fails_to_start_with_the_reason(backend, start_sandbox):
    from sandbox.backends.base import SandboxStartError

    with pytest.raises(SandboxStartError) as caught:
        start_sandbox(scenarios=(("retry-storm", {"delay_ms": 1}),))
    assert "delay_ms must be between 50 and 5000 ms" in caught.value.log_tail
    assert backend.list() == []  # nothing left behind


PROBE = """
import socket, sys
for host, port in (("127.0.0.1", 5432), ("127.0.0.1", 6379), ("8.8.8.8", 53)):
    try:
        socket.create_connection((host, port), 2).close()
        print("reached", host, port)
    except OSError as exc:
        print("blocked", host, port, type(exc).__name__)
"""


@pytest.mark.skipif(shutil.which("nsenter") is None, reason="nsenter (util-linux) is not installed")
def test_from_inside_the_sandbox_network_the_host_services_are_unreachable(sandbox):
    """Enters only the sandbox's network namespace and tries what a sandbox could try."""
    handle, _ = sandbox
    supervisor = sandbox_host_pids(handle)[1]
    host = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=30, check=True
    )
    assert "reached 127.0.0.1 5432" in host.stdout  # the host itself does reach PostgreSQL
    assert "reached 127.0.0.1 6379" in host.stdout
    inside = subprocess.run(
        ["nsenter", f"--net=/proc/{supervisor}/ns/net", "--", sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "blocked 127.0.0.1 5432 ConnectionRefusedError" in inside.stdout
    assert "blocked 127.0.0.1 6379 ConnectionRefusedError" in inside.stdout
    assert "blocked 8.8.8.8 53" in inside.stdout
    assert "reached" not in inside.stdout


@pytest.mark.skipif(shutil.which("nsenter") is None, reason="nsenter (util-linux) is not installed")
def test_the_sandbox_cannot_undo_the_mounts_that_hide_the_host(sandbox):
    """Even with every capability of its own user namespace, the sandbox cannot unmount the
    tmpfs over /tmp and /run nor make / writable: the kernel locked those mounts."""
    handle, _ = sandbox
    supervisor = sandbox_host_pids(handle)[1]
    enter = ["nsenter", f"--target={supervisor}", "--user", "--mount", "--"]
    for attempt in (["umount", "/tmp"], ["umount", "/run"], ["mount", "-o", "remount,rw", "/"]):
        result = subprocess.run(
            [*enter, *attempt], capture_output=True, text=True, timeout=30, check=False
        )
        assert result.returncode != 0, f"{attempt} succeeded inside the sandbox"
    listing = subprocess.run(
        [*enter, "ls", "/tmp"], capture_output=True, text=True, timeout=30, check=True
    )
    assert handle.sandbox_id not in listing.stdout.split()  # other sandboxes' run dirs stay hidden


@pytest.mark.skipif(shutil.which("nsenter") is None, reason="nsenter (util-linux) is not installed")
def test_a_sandbox_root_starts_is_no_one_on_the_host(sandbox):
    """Started by root, a sandbox's processes are an unprivileged host user: root inside
    owns nothing of host root's, not even a file in its own run directory."""
    handle, client = sandbox
    if os.geteuid() != 0:
        pytest.skip("started by an unprivileged user, a sandbox already runs as that user")
    for pid in sandbox_host_pids(handle).values():
        status = Path(f"/proc/{pid}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert "0" not in uids, status
    secret = Path(handle.details["run_dir"]) / "root-only"
    secret.write_text("host root's\n")
    secret.chmod(0o600)
    supervisor = sandbox_host_pids(handle)[1]
    enter = ["nsenter", f"--target={supervisor}", "--user", "--mount", "--"]
    inside = subprocess.run(
        [*enter, "sh", "-c", f"id -u; cat {secret}; ls /root"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert inside.stdout.splitlines()[0] == "0"  # root in its own namespace...
    assert "host root's" not in inside.stdout  # ...and no one outside it
    assert "Permission denied" in inside.stderr
    assert client.health()["ready"]  # its own run directory is its own
