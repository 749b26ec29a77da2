"""The local backend: each sandbox is a process tree on this machine, in its own user,
PID, mount and network namespaces, limited by cgroups (or rlimits), reached through the
Unix socket in its run directory. See sandbox.isolation for what that guarantees.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from sandbox.backends.base import (
    SandboxHandle,
    SandboxSpec,
    SandboxStartError,
    SandboxStatus,
    runtime_args,
)
from sandbox.client import SandboxClient
from sandbox.isolation import (
    DEFAULT_HIDDEN,
    Cgroup,
    IsolatedProcess,
    mount_plan,
    sandbox_ids,
    spawn_isolated,
    unsearchable,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
HANDLE_FILE = "handle.json"
DISK_QUOTA_MB = 64


def default_root() -> Path:
    return Path(os.environ.get("SANDBOX_ROOT") or "/tmp/sdlab-sandboxes")  # noqa: S108


class ForkedSandbox:
    """A sandbox the zygote forked: not our child, so watched through a pidfd."""

    def __init__(self, pid: int, pidfd: int, name: str, cgroup: Cgroup | None) -> None:
        self.pid = pid
        self.pidfd = pidfd  # from the zygote: this very process, whatever becomes of its pid
        self.name = name
        self.cgroup = cgroup
        self.limits_via = f"cgroup-{cgroup.version}" if cgroup else "rlimit"

    def poll(self) -> int | None:
        if self.pidfd < 0:
            return 0
        poller = select.poll()
        poller.register(self.pidfd, select.POLLIN)
        return 0 if poller.poll(0) else None

    def terminate(self, grace_seconds: float = 5.0) -> None:
        """SIGTERM (the outer process passes it to the supervisor), then SIGKILL, then the
        cgroup goes. PID 1 dies with the outer process, and the namespace with PID 1.
        Idempotent."""
        if self.pidfd >= 0:
            poller = select.poll()
            poller.register(self.pidfd, select.POLLIN)
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGTERM)
            if not poller.poll(grace_seconds * 1000):
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
                poller.poll(10_000)
            os.close(self.pidfd)
            self.pidfd = -1
        if self.cgroup is not None:
            self.cgroup.remove()


class LocalBackend:
    name = "local"

    def __init__(
        self, root: Path | None = None, python: str = sys.executable, zygote: bool = True
    ) -> None:
        self.root = Path(root or default_root()).resolve()
        self.python = python
        self.running: dict[str, IsolatedProcess | ForkedSandbox] = {}
        self.use_zygote = zygote
        self.zygote: subprocess.Popen[bytes] | None = None
        # One fork server per process using the backend (Celery runs several): each its own.
        self.zygote_socket = self.root / f"zygote-{os.getpid()}.sock"
        self.zygote_log = self.root / f"zygote-{os.getpid()}.log"

    def _env(self) -> dict[str, str]:
        return {
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONDONTWRITEBYTECODE": "1",
            "SANDBOX_DISK_QUOTA_MB": str(DISK_QUOTA_MB),
        }

    def _zygote_ready(self) -> bool:
        """Starts the fork server on first use; False if it cannot run here."""
        if not self.use_zygote:
            return False
        if self.zygote is not None and self.zygote.poll() is None:
            return True
        self.root.mkdir(parents=True, exist_ok=True)
        self.zygote = subprocess.Popen(  # noqa: S603
            [self.python, "-m", "sandbox.zygote", "--socket", str(self.zygote_socket)],
            cwd=REPO_ROOT,
            # Not the platform's environment (database URLs, secrets): sandboxes fork from it.
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LANG": "C.UTF-8",
                "HOME": str(self.root),
                **{k: v for k, v in os.environ.items() if k == "SANDBOX_CACHE_DIR"},
                **self._env(),
                "SANDBOX_ZYGOTE_PARENT": str(os.getpid()),
            },
            stdout=subprocess.DEVNULL,
            stderr=open(self.zygote_log, "ab"),  # noqa: SIM115
        )
        atexit.register(self.close)  # the fork server ends with the process that started it
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.zygote.poll() is None:
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(self.zygote_socket))
                return True
            time.sleep(0.01)
        self.close()
        self.use_zygote = False
        return False

    def close(self) -> None:
        """Stops the fork server (running sandboxes go on until stopped or expired)."""
        if self.zygote is not None:
            self.zygote.terminate()
            try:
                self.zygote.wait(10)
            except subprocess.TimeoutExpired:
                self.zygote.kill()
                self.zygote.wait()
            self.zygote = None
        with contextlib.suppress(FileNotFoundError):
            self.zygote_socket.unlink()
        log = self.zygote_log
        with contextlib.suppress(FileNotFoundError):
            if log.stat().st_size == 0:
                log.unlink()  # kept only when it has something to say

    def _run_dir(self, sandbox_id: str) -> Path:
        return self.root / sandbox_id

    def start(self, spec: SandboxSpec) -> SandboxHandle:
        from sandbox.runtime import database_template

        sandbox_id = f"{spec.session_id}-{secrets.token_hex(3)}"
        run_dir = self._run_dir(sandbox_id)
        (run_dir / "data").mkdir(parents=True)
        # The shop's database is copied in from outside: the sandbox cannot see the cache.
        shutil.copyfile(database_template(), run_dir / "data" / "shop.sqlite3")
        argv = [self.python, "-m", "sandbox.runtime", *runtime_args(spec, str(run_dir))]
        hide = (*DEFAULT_HIDDEN, str(self.root), str(REPO_ROOT / ".run"))
        try:
            process = self._spawn(argv, sandbox_id, run_dir, spec, hide)
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing started: leave nothing behind
            raise
        self.running[sandbox_id] = process
        handle = SandboxHandle(
            backend=self.name,
            sandbox_id=sandbox_id,
            address=f"unix://{run_dir}/control.sock",
            session_id=spec.session_id,
            details={
                "run_dir": str(run_dir),
                "outer_pid": process.pid,
                "limits_via": process.limits_via,
                "cgroup": self._cgroup_record(process.cgroup),
                "started_at": time.time(),
            },
        )
        (run_dir / HANDLE_FILE).write_text(json.dumps(handle.as_dict()))
        try:
            self._wait_ready(handle, process)
        except BaseException:
            self.stop(handle)
            raise
        return handle

    def _spawn(
        self,
        argv: list[str],
        sandbox_id: str,
        run_dir: Path,
        spec: SandboxSpec,
        hide: tuple[str, ...],
    ) -> IsolatedProcess | ForkedSandbox:
        """Forked by the zygote where it runs (milliseconds), else a new interpreter."""
        keep = (str(REPO_ROOT), sys.prefix, sys.base_prefix)
        if self._zygote_ready():
            from sandbox import zygote

            ids = sandbox_ids()
            if ids:  # root starts it: it runs as an unprivileged user, which owns its run_dir
                hide = (*hide, *map(str, unsearchable(keep, *ids)))
                for path in (run_dir, *run_dir.rglob("*")):
                    os.chown(path, *ids)
            plan = mount_plan(hide, run_dir, keep)
            answer, pidfd = zygote.request(
                str(self.zygote_socket),
                {
                    "argv": argv[3:],  # the runtime's own arguments
                    "name": sandbox_id,
                    "run_dir": str(run_dir),
                    "limits": asdict(spec.limits),
                    "hide": [str(path) for path in plan.hidden],
                    "kept": [str(path) for path in plan.kept],
                    "hidden_inside": [str(path) for path in plan.hidden_inside],
                    "env": self._env(),
                    "ids": ids,
                },
            )
            return ForkedSandbox(
                int(answer["pid"]), pidfd, sandbox_id, cgroup_from_record(answer["cgroup"])
            )
        return spawn_isolated(
            argv,
            name=sandbox_id,
            run_dir=run_dir,
            limits=spec.limits,
            env=self._env(),
            hide=hide,
            keep=keep,
        )

    @staticmethod
    def _cgroup_record(cgroup: Cgroup | None) -> dict | None:
        if cgroup is None:
            return None
        return {
            "name": cgroup.name,
            "version": cgroup.version,
            "dirs": [str(d) for d in cgroup.dirs],
            "controllers": sorted(cgroup.controllers),
        }

    def _wait_ready(self, handle: SandboxHandle, process: IsolatedProcess | ForkedSandbox) -> None:
        client = SandboxClient(handle.address, timeout=2.0)
        # The supervisor writes this file once ready: a stat() costs it nothing, a /health
        # request every 5 ms cost it a fifth of its CPU while it started.
        ready_file = Path(handle.details["run_dir"]) / "ready"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                raise SandboxStartError(
                    f"the sandbox exited while starting (status {code})", self._log_tail(handle)
                )
            if ready_file.exists():
                with contextlib.suppress(OSError):
                    if client.health().get("ready"):
                        return
            time.sleep(0.005)
        raise SandboxStartError(
            f"the sandbox was not ready within {START_TIMEOUT_S:g} s", self._log_tail(handle)
        )

    def _log_tail(self, handle: SandboxHandle, lines: int = 30) -> str:
        log = Path(handle.details.get("run_dir", "")) / "sandbox.log"
        with contextlib.suppress(OSError):
            return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, handle: SandboxHandle) -> None:
        """Stops every process of the sandbox, removes its cgroup and its run directory.
        Works from any process, not only the one that started it; idempotent."""
        process = self.running.pop(handle.sandbox_id, None)
        if process is not None:
            process.terminate(grace_seconds=3.0)
        else:
            self._stop_elsewhere(handle)
        run_dir = self._run_dir(handle.sandbox_id)
        if run_dir.is_dir() and run_dir.parent == self.root:
            shutil.rmtree(run_dir, ignore_errors=True)

    def _stop_elsewhere(self, handle: SandboxHandle) -> None:
        """Started by another process: ask it to stop, then make sure, by its cgroup."""
        with contextlib.suppress(OSError, Exception):
            SandboxClient(handle.address, timeout=1.0).stop()
        outer = int(handle.details.get("outer_pid") or 0)
        deadline = time.monotonic() + 5.0
        while outer and _alive(outer) and time.monotonic() < deadline:
            time.sleep(0.02)
        cgroup = cgroup_from_record(handle.details.get("cgroup"))
        if cgroup is not None:
            if any(d.exists() for d in cgroup.dirs):
                cgroup.remove()
        elif outer and _alive(outer):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(outer, signal.SIGKILL)

    def status(self, handle: SandboxHandle) -> SandboxStatus:
        run_dir = self._run_dir(handle.sandbox_id)
        if not run_dir.exists():
            return SandboxStatus.STOPPED
        if (run_dir / "exit.json").exists():
            return _ended(run_dir)  # ending or ended: its supervisor has said why
        process = self.running.get(handle.sandbox_id)
        alive = (
            process.poll() is None if process else _alive(int(handle.details.get("outer_pid") or 0))
        )
        if not alive:
            return _ended(run_dir)
        try:
            ready = SandboxClient(handle.address, timeout=1.0).health().get("ready")
        except OSError:
            return SandboxStatus.STARTING
        return SandboxStatus.RUNNING if ready else SandboxStatus.STARTING

    def list(self) -> list[SandboxHandle]:
        handles: list[SandboxHandle] = []
        if not self.root.is_dir():
            return handles
        for entry in sorted(self.root.iterdir()):
            with contextlib.suppress(OSError, ValueError, KeyError):
                handles.append(
                    SandboxHandle.from_dict(json.loads((entry / HANDLE_FILE).read_text()))
                )
        return handles


def cgroup_from_record(record: dict | None) -> Cgroup | None:
    """The cgroup a handle (or the zygote's answer) describes, to remove it from anywhere.
    Only directories under the sandboxes' own `sdlab/` parent are ever accepted."""
    if not record:
        return None
    for directory in record["dirs"]:
        path = Path(directory)
        if (
            path.parent.name != "sdlab"
            or path.parts[:3] != ("/", "sys", "fs")
            or ".." in path.parts
        ):
            raise ValueError(f"not a sandbox cgroup: {directory}")
    return Cgroup(
        record["name"],
        record["version"],
        tuple(Path(d) for d in record["dirs"]),
        frozenset(record["controllers"]),
    )


def host_pids(handle: SandboxHandle) -> dict[int, int]:
    """Host pid of every process of a running sandbox, keyed by its pid inside it (pids
    in /state are the inside ones: never signal those from the host)."""
    outer = int(handle.details["outer_pid"])
    children = Path(f"/proc/{outer}/task/{outer}/children").read_text().split()
    namespace = os.readlink(f"/proc/{int(children[0])}/ns/pid")
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns" / "pid") != namespace:
                continue
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:"):
                found[int(line.split()[-1])] = int(entry.name)
    return found


def _ended(run_dir: Path) -> SandboxStatus:
    """How a sandbox whose processes are gone ended, from what its supervisor wrote."""
    try:
        reason = json.loads((run_dir / "exit.json").read_text())["reason"]
    except (OSError, ValueError, KeyError):
        return SandboxStatus.FAILED  # killed before it could say
    if reason == "expired":
        return SandboxStatus.EXPIRED
    return SandboxStatus.STOPPED if reason == "stopped" else SandboxStatus.FAILED


def end_reason(handle: SandboxHandle) -> str:
    """The supervisor's own words on why the sandbox ended ("" while it runs)."""
    try:
        return str(
            json.loads((Path(handle.details["run_dir"]) / "exit.json").read_text())["reason"]
        )
    except (OSError, ValueError, KeyError):
        return ""


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] not in "ZX"
    except OSError:
        return False
