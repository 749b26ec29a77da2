"""Containment of the local sandbox backend, proven with real isolated processes.

Each test starts real sandboxes running tests/sandbox/sandbox_program.py, which reports
what it could do from inside as JSON in its run_dir. Nothing is mocked; every sandbox is
terminated by the fixture, and every wait has a deadline.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.isolation import (
    Cgroup,
    IsolatedProcess,
    Limits,
    cgroup_support,
    sandbox_ids,
    spawn_isolated,
    unsearchable,
)

PROGRAM = Path(__file__).with_name("sandbox_program.py")
REPO = Path(__file__).resolve().parents[2]
POSTGRES_SOCKET = "/var/run/postgresql/.s.PGSQL.5432"
MiB = 1024 * 1024
DEADLINE = 30.0

Start = Callable[..., IsolatedProcess]
needs_cgroups = pytest.mark.skipif(
    cgroup_support() == "none", reason="no writable cgroup hierarchy on this machine"
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start sandbox_program.py isolated; every sandbox is terminated at teardown."""
    started: list[IsolatedProcess] = []

    def start_sandbox(
        *args: str, limits: Limits | None = None, use_cgroups: bool = True
    ) -> IsolatedProcess:
        name = unique("t")
        sandbox = spawn_isolated(
            [sys.executable, "-I", str(PROGRAM), *args],
            name=name,
            run_dir=tmp_path / name,
            limits=limits or Limits(),
            use_cgroups=use_cgroups,
        )
        started.append(sandbox)
        return sandbox

    yield start_sandbox
    for sandbox in started:
        sandbox.terminate(grace_seconds=0)


def log_of(sandbox: IsolatedProcess) -> str:
    log = sandbox.run_dir / "sandbox.log"
    return log.read_text() if log.exists() else "(no log)"


def read_report(sandbox: IsolatedProcess, filename: str = "result.json") -> Any:
    """The JSON the program wrote, waiting for it up to DEADLINE seconds."""
    path = sandbox.run_dir / filename
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())
        if sandbox.poll() is not None and not path.exists():
            pytest.fail(f"sandbox exited {sandbox.poll()} without {filename}: {log_of(sandbox)}")
        time.sleep(0.01)
    pytest.fail(f"no {filename} after {DEADLINE}s: {log_of(sandbox)}")


def host_connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
    except OSError:
        return False
    return True


def ask(socket_path: Path) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(socket_path))
        sock.sendall(b"ping")
        return sock.recv(64).decode()


def host_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


@contextlib.contextmanager
def namespaces_of(pid: int, kinds: tuple[str, ...]) -> Iterator[dict[str, int]]:
    """Open handles on a process's namespaces: while held, a namespace's inode number
    cannot be reused by a new namespace, so "who is still in it" has a true answer."""
    handles = {kind: os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY) for kind in kinds}
    try:
        yield handles
    finally:
        for handle in handles.values():
            os.close(handle)


def pids_in_namespace(handle: int, kind: str = "pid") -> list[int]:
    namespace = os.fstat(handle)
    found = []
    for pid in host_pids():
        try:
            other = os.stat(f"/proc/{pid}/ns/{kind}")
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (namespace.st_dev, namespace.st_ino):
            found.append(pid)
    return found


def pids_with_marker(marker: str) -> list[int]:
    found = []
    for pid in host_pids():
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def running_init(sandbox: IsolatedProcess) -> int:
    """Host pid of the sandbox's PID 1, waiting until it exists."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        init = sandbox.namespace_pid()
        if init is not None:
            return init
        assert sandbox.poll() is None, log_of(sandbox)
        time.sleep(0.005)
    pytest.fail("the sandbox's PID 1 did not appear")


# 1. Nothing outside is reachable: the host's services, the internet, another sandbox.


def test_host_postgres_redis_and_internet_are_unreachable_from_inside(start: Start) -> None:
    assert host_connects(5432), "PostgreSQL must listen on the host's 127.0.0.1:5432"
    assert host_connects(6379), "Redis must listen on the host's 127.0.0.1:6379"
    assert os.path.exists(POSTGRES_SOCKET), "PostgreSQL's Unix socket must exist on the host"

    found = read_report(
        start("probe", "127.0.0.1:5432", "127.0.0.1:6379", "8.8.8.8:53", POSTGRES_SOCKET)
    )

    assert found == {
        "127.0.0.1:5432": "ECONNREFUSED",  # the sandbox's own loopback: nobody listens
        "127.0.0.1:6379": "ECONNREFUSED",
        "8.8.8.8:53": "ENETUNREACH",  # no route out of the namespace
        POSTGRES_SOCKET: "ENOENT",  # /run is covered inside
    }


def test_a_sandbox_cannot_reach_another_over_tcp_or_its_unix_socket(start: Start) -> None:
    a = start("listen", "18080")
    assert read_report(a, "ready.json") == {"self": "connected"}

    found = read_report(start("probe", "127.0.0.1:18080", str(a.run_dir / "control.sock")))

    assert found == {
        "127.0.0.1:18080": "ECONNREFUSED",
        str(a.run_dir / "control.sock"): "ENOENT",
    }
    assert ask(a.run_dir / "control.sock") == "pong"  # while the host still can


# 2. Inside, processes talk to each other over 127.0.0.1.


def test_processes_inside_talk_over_loopback(start: Start) -> None:
    assert read_report(start("loopback")) == {"client_rc": 0, "reply": "pong"}


def test_bring_loopback_up_in_a_fresh_network_namespace() -> None:
    """The ioctl fallback used when iproute2 is absent, run where lo starts down."""
    code = (
        "import socket\n"
        "from sandbox.isolation import bring_loopback_up\n"
        "def reach():\n"
        "    try:\n"
        "        with socket.create_server(('127.0.0.1', 0)) as server:\n"
        "            socket.create_connection(server.getsockname(), timeout=5).close()\n"
        "    except OSError as exc:\n"
        "        return exc.strerror\n"
        "    return 'up'\n"
        "before = reach()\n"
        "bring_loopback_up()\n"
        "print(before, '->', reach())\n"
    )
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--net", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env={"PYTHONPATH": str(REPO), "PATH": os.environ["PATH"]},
        check=False,
    )
    assert done.stdout.strip() == "Network is unreachable -> up", done.stderr


# 3. Memory: a hog is stopped; the host and a neighbour keep running.


@pytest.mark.parametrize("use_cgroups", [True, False], ids=["cgroup", "rlimit"])
def test_memory_hog_is_stopped_and_neighbours_keep_running(start: Start, use_cgroups: bool) -> None:
    if use_cgroups and cgroup_support() == "none":
        pytest.skip("no writable cgroup hierarchy on this machine")
    neighbour = start("serve-unix")
    read_report(neighbour, "ready.json")
    hog = start(
        "hog", str(512 * MiB), limits=Limits(memory_bytes=64 * MiB), use_cgroups=use_cgroups
    )

    status = hog.wait(timeout=60)

    if hog.cgroup is not None:  # OOM-killed: SIGKILL, which util-linux 2.38 reports as 1
        assert hog.limits_via == f"cgroup-{cgroup_support()}"
        assert status in (-signal.SIGKILL, 1), log_of(hog)
        assert not (hog.run_dir / "result.json").exists()  # it never got its 512 MiB
        assert hog.cgroup.oom_kills() >= 1
    else:
        assert hog.limits_via == "rlimit"
        assert (status, read_report(hog)) == (3, {"outcome": "MemoryError"}), log_of(hog)
    assert neighbour.poll() is None
    assert ask(neighbour.run_dir / "control.sock").startswith("pong")
    assert subprocess.run(["true"], check=False).returncode == 0  # the host still forks

    hog.terminate()
    if hog.cgroup is not None:
        assert [path for path in hog.cgroup.dirs if path.exists()] == []


# 4. Processes: a fork bomb hits the limit and is contained.


@pytest.mark.parametrize("use_cgroups", [True, False], ids=["cgroup", "rlimit"])
def test_fork_bomb_hits_the_process_limit(start: Start, use_cgroups: bool) -> None:
    if use_cgroups and cgroup_support() == "none":
        pytest.skip("no writable cgroup hierarchy on this machine")
    if not use_cgroups and os.geteuid() == 0:
        pytest.skip("root is exempt from RLIMIT_NPROC: the rlimit fallback has no process cap")
    limits = Limits(max_pids=24, memory_bytes=256 * MiB)
    bomb = start("fork-bomb", "20", limits=limits, use_cgroups=use_cgroups)
    with namespaces_of(running_init(bomb), ("pid",)) as namespace:
        eagain = read_report(bomb, "eagain.json")
        counts = []
        for _ in range(20):
            counts.append(len(pids_in_namespace(namespace["pid"])))
            assert subprocess.run(["true"], check=False).returncode == 0  # the host still forks
            time.sleep(0.02)

        assert eagain == {"errno": "EAGAIN"}
        # Filled to the limit and never past it; the outermost process counts too.
        assert max(counts) + 1 == limits.max_pids
        if bomb.cgroup is not None:
            assert len(bomb.cgroup.pids()) <= limits.max_pids
        bomb.terminate(grace_seconds=0)
        assert pids_in_namespace(namespace["pid"]) == []


# 5. PID 1 of its own namespace; /proc shows only the sandbox.


def test_sandbox_is_pid_1_and_sees_only_its_own_processes(start: Start) -> None:
    sandbox = start("processes")
    found = read_report(sandbox, "ready.json")

    assert found["pid"] == 1
    assert found["visible"] == sorted([1, found["child"]])
    init = running_init(sandbox)
    assert init != 1
    status = Path(f"/proc/{init}/status").read_text()
    assert f"NSpid:\t{init}\t1\n" in status
    assert len(host_pids()) > len(found["visible"])


# 6. The control plane reaches the sandbox through a Unix socket in its run_dir.


def test_host_talks_to_a_server_inside_through_a_unix_socket_in_run_dir(start: Start) -> None:
    sandbox = start("serve-unix")
    read_report(sandbox, "ready.json")

    assert ask(sandbox.run_dir / "control.sock") == "pong from pid 1"

    sandbox.terminate(grace_seconds=DEADLINE)  # PID 1 handles SIGTERM: a clean exit
    assert sandbox.poll() == 0


def test_host_filesystem_is_read_only_and_tmp_is_private(start: Start) -> None:
    marker = unique("fs")
    sandbox = start("filesystem", marker, str(PROGRAM.parent))
    try:
        found = read_report(sandbox)
    finally:
        (PROGRAM.parent / f".probe-{marker}").unlink(missing_ok=True)

    assert found["host_dir"] == "EROFS"
    assert found["tmp"] == "written"
    assert not Path(f"/tmp/probe-{marker}").exists()
    assert found["run_dir"] == "written"
    assert (sandbox.run_dir / f"probe-{marker}").read_text() == marker
    assert found["cwd"] == str(sandbox.run_dir)
    assert "postgresql" not in found["run"]


# 7. Stopping leaves no process, namespace or cgroup.


def test_terminate_leaves_no_process_namespace_or_cgroup(start: Start) -> None:
    marker = unique("tree")
    sandbox = start("tree", marker)
    read_report(sandbox, "ready.json")
    init = running_init(sandbox)
    deadline = time.monotonic() + DEADLINE
    # PID 1, 2 sleepers with a child each, the orphan's sleeper, and the outer process
    # (whose command line may carry the marker too: it is counted once, here)
    while len({sandbox.pid, *pids_with_marker(marker)}) < 7 and time.monotonic() < deadline:
        time.sleep(0.01)
    tracked = {sandbox.pid, *pids_with_marker(marker)}
    assert len(tracked) >= 7
    if sandbox.cgroup is not None:
        assert tracked <= set(sandbox.cgroup.pids())

    with namespaces_of(init, ("pid", "net", "mnt", "user", "ipc", "uts")) as namespaces:
        sandbox.terminate(grace_seconds=0.5)  # PID 1 has no SIGTERM handler: ends in SIGKILL

        assert sandbox.poll() not in (None, 0)
        assert pids_with_marker(marker) == []
        assert [pid for pid in tracked if marker.encode() in cmdline(pid)] == []
        for kind, handle in namespaces.items():
            assert pids_in_namespace(handle, kind) == [], kind
    if sandbox.cgroup is not None:
        assert [path for path in sandbox.cgroup.dirs if path.exists()] == []


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@needs_cgroups
def test_cgroup_holds_the_limits() -> None:
    cgroup = Cgroup.create(unique("limits"), Limits(96 * MiB, 250, 20))
    try:
        values = {
            path.name: path.read_text().strip()
            for directory in cgroup.dirs
            for path in directory.iterdir()
            if path.name
            in {"memory.limit_in_bytes", "memory.max", "pids.max", "cpu.cfs_quota_us", "cpu.max"}
        }
    finally:
        cgroup.remove()

    if cgroup.version == "v1":
        expected = {"memory.limit_in_bytes": str(96 * MiB), "pids.max": "20"}
        if "cpu" in cgroup.controllers:
            expected["cpu.cfs_quota_us"] = "25000"
    else:
        expected = {"memory.max": str(96 * MiB), "pids.max": "20"}
        if "cpu" in cgroup.controllers:
            expected["cpu.max"] = "25000 100000"
    assert values == expected
    assert [path for path in cgroup.dirs if path.exists()] == []


@needs_cgroups
def test_two_sandboxes_cannot_share_a_cgroup_name() -> None:
    name = unique("twice")
    cgroup = Cgroup.create(name, Limits())
    try:
        with pytest.raises(FileExistsError, match=f"a sandbox named '{name}' is running"):
            Cgroup.create(name, Limits())
    finally:
        cgroup.remove()


# 8. Bad input fails early and clearly.


@pytest.mark.parametrize("field", ["memory_bytes", "cpu_millicores", "max_pids"])
@pytest.mark.parametrize("value", [0, -1])
def test_limits_reject_non_positive_values(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"Limits.{field} must be a positive integer"):
        Limits(**{field: value})


@pytest.mark.parametrize("program", ["/no/such/program", "no-such-program-sdlab"])
def test_a_program_that_does_not_exist_fails_before_anything_starts(
    tmp_path: Path, program: str
) -> None:
    name = unique("missing")
    with pytest.raises(FileNotFoundError, match="sandbox program not found") as raised:
        spawn_isolated([program], name=name, run_dir=tmp_path / "run", limits=Limits())

    assert raised.value.filename == program
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "x" * 65])
def test_a_bad_sandbox_name_is_rejected(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="sandbox name must match"):
        spawn_isolated(["true"], name=name, run_dir=tmp_path / "run", limits=Limits())


def test_a_program_the_sandbox_would_not_see_is_rejected(tmp_path: Path) -> None:
    program = tmp_path / "program"  # under /tmp, which the sandbox sees as an empty tmpfs
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    with pytest.raises(ValueError, match="hidden from the sandbox"):
        spawn_isolated(
            [str(program)], name=unique("hidden"), run_dir=tmp_path / "run", limits=Limits()
        )


def test_an_empty_argv_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="argv must be a non-empty list"):
        spawn_isolated([], name=unique("empty"), run_dir=tmp_path / "run", limits=Limits())


# 9. The user a sandbox becomes when root starts it.


@pytest.mark.skipif(os.geteuid() != 0, reason="only root's sandboxes change user")
def test_the_sandbox_user_comes_from_the_environment_and_is_never_root(monkeypatch):
    monkeypatch.delenv("SDLAB_SANDBOX_IDS", raising=False)
    assert sandbox_ids() == (65534, 65534)
    monkeypatch.setenv("SDLAB_SANDBOX_IDS", "1234:2345")
    assert sandbox_ids() == (1234, 2345)
    monkeypatch.setenv("SDLAB_SANDBOX_IDS", "1234")
    assert sandbox_ids() == (1234, 1234)
    for bad in ("nobody", "12:x", "0:0", "1000:0"):
        monkeypatch.setenv("SDLAB_SANDBOX_IDS", bad)
        with pytest.raises(ValueError, match="SDLAB_SANDBOX_IDS"):
            sandbox_ids()


def test_directories_the_sandbox_user_cannot_search_are_found():
    base = Path(tempfile.mkdtemp(prefix="sdlab-search-", dir="/tmp"))
    try:
        base.chmod(0o755)  # the way to it open to all, as /tmp's is
        closed = base / "closed"
        code = closed / "python" / "lib"
        code.mkdir(parents=True)
        closed.chmod(0o700)
        owner, group = closed.stat().st_uid, closed.stat().st_gid
        assert unsearchable([code], uid=owner + 1, gid=group + 1) == [closed]
        assert unsearchable([code], uid=owner, gid=group + 1) == []  # its owner may
        closed.chmod(0o701)
        assert unsearchable([code], uid=owner + 1, gid=group + 1) == []
    finally:
        shutil.rmtree(base)
