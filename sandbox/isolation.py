"""Run one sandbox isolated from the host and from every other sandbox (Linux only).

The public API, stdlib only:

- ``Limits(memory_bytes, cpu_millicores, max_pids)``: what one sandbox may use; a
  non-positive value is a ``ValueError`` naming the field.
- ``cgroup_support() -> "v2" | "v1" | "none"``: which cgroup hierarchy this process can
  use for limits, detected at run time ("none": absent, not writable, or on v2 no
  cgroup in which the memory and pids controllers can be enabled for children).
- ``Cgroup.create(name, limits)``: one sandbox's cgroup(s), v1 or v2 behind one
  interface: ``procs_file_paths()``, ``pids()``, ``oom_kills()``, ``kill_all()``,
  ``remove()``, and ``dirs`` (every directory it made).
- ``spawn_isolated(argv, *, name, run_dir, limits, ...) -> IsolatedProcess``: start
  ``argv`` as PID 1 of a new sandbox. The handle has ``pid`` (host pid of the outermost
  process), ``cgroup``, ``limits_via`` ("cgroup-v1", "cgroup-v2" or "rlimit"),
  ``poll()``, ``wait(timeout)``, ``namespace_pid()`` (host pid of the sandbox's PID 1) and
  ``terminate(grace_seconds)``, which must be called even after the sandbox has exited.
  The exit status is PID 1's; one killed by signal N gives -N, except SIGKILL (an OOM
  kill, or ``terminate``), which util-linux before 2.39 reports as 1: ask
  ``cgroup.oom_kills()`` to tell an OOM kill.
- ``bring_loopback_up()``: set IFF_UP on ``lo`` of the current network namespace.

How a sandbox starts (one ``/bin/sh`` and ``unshare`` from util-linux, no Python step)::

    sh: echo $$ > <cgroup.procs of each hierarchy>   joins the cgroup before any fork
      exec unshare --user --map-root-user --pid --fork --kill-child --mount-proc
                   --net --mount --uts --ipc [--cgroup]
        PID 1 (sh): ip link set lo up; mount -a (hide host dirs, keep run_dir); / read-only
          exec argv                                  argv is now PID 1

What that guarantees:

- Network: a new network namespace with only ``lo``, which is up. 127.0.0.1 inside is the
  sandbox's own; the host's PostgreSQL and Redis, other sandboxes and the internet are
  unreachable. Abstract Unix sockets are per network namespace too.
- Files: the mount namespace covers ``hide`` (by default /run, /tmp, /var/tmp, /dev/shm
  and /sys/fs/cgroup) with empty tmpfs, so host Unix sockets such as PostgreSQL's in
  /run/postgresql and other sandboxes' run dirs under /tmp cannot be reached; ``/`` is
  read-only; ``run_dir`` is bound back read-write at its own path, so a Unix socket the
  sandbox binds there is the control plane's way in. A backend that keeps run dirs
  elsewhere passes their common parent in ``hide``.
- Processes: argv is PID 1 of its own PID namespace and /proc shows only the sandbox.
  When PID 1 dies the kernel kills every process of the namespace; when the outermost
  process dies, PID 1 gets SIGKILL (--kill-child). PID 1 only receives the signals it
  handles: without a SIGTERM handler, ``terminate`` ends in SIGKILL after the grace.
- Limits with cgroups (v1 or v2, whichever holds the memory and pids controllers): a
  memory cap on the sandbox's total including tmpfs and with swap off where the kernel
  accounts it (memsw on v1, memory.swap.max on v2), a CPU quota when the cpu controller
  is there, and a cap on tasks (fork fails with EAGAIN). Every process of the sandbox,
  the outermost included, counts. v1: under ``sdlab/`` in this process's own cgroup of
  each hierarchy. v2: under ``sdlab/`` in the first of this process's own cgroup, its
  parent, or the root that is writable and can give memory and pids to its children (a
  non-root cgroup with processes of its own cannot: on systemd use Delegate=yes and move
  the platform into a leaf, or run from a user session, whose app.slice qualifies). On
  v2 the processes live in a leaf ``sandbox/`` below the limited cgroup, so a sandbox
  that mounts cgroup2 in its cgroup namespace sees the leaf and cannot lift its limits.
- Limits without cgroups ("rlimit"): RLIMIT_AS caps each process's address space, not
  the sandbox's total; RLIMIT_NPROC is set inside the new user namespace, where the
  kernel (5.14+) counts it per namespace and uid, so it caps the sandbox's processes
  when the caller is not root (root is exempt from RLIMIT_NPROC: no process cap at all);
  CPU is not capped, only lowered to nice 10.
- Stopping: ``terminate`` leaves no process, so no namespace, and removes the cgroups.

Users: a sandbox is root in its own user namespace and, on the host, the user that
started it. The fork server (sandbox/zygote.py, what LocalBackend uses) goes further when
root starts it: the sandbox becomes an unprivileged host user (``sandbox_ids()``, nobody
by default) before anything of it runs, so host root's files are closed to it.

Not guaranteed: ``spawn_isolated`` (util-linux, the fallback where the fork server cannot
run) started by root maps uid 0 inside to host uid 0, so there host file permissions,
/dev and global sysctls are not a boundary (the sandbox runs the project's own code; run
the platform unprivileged where that matters); run_dir shares the host's disk, so its size
is not capped here.

Setup failures inside exit with 121 (run_dir), 122 (loopback), 123 (hiding host dirs),
124 (read-only /), 125 (joining the cgroup) or 126 (rlimits); the reason is in the log.
The sandbox's environment is PATH, LANG, HOME=run_dir and ``env``, never the caller's.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import select
import shlex
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

CgroupVersion = Literal["v1", "v2"]

PARENT_CGROUP = "sdlab"
SANDBOX_IDS_ENV = "SDLAB_SANDBOX_IDS"
# Covered, not used: host Unix sockets (PostgreSQL's in /run), other sandboxes, cgroupfs.
DEFAULT_HIDDEN: tuple[str, ...] = ("/run", "/tmp", "/var/tmp", "/dev/shm", "/sys/fs/cgroup")  # noqa: S108
_REQUIRED = ("memory", "pids")
_CONTROLLERS = ("memory", "pids", "cpu")
_CPU_PERIOD_US = 100_000
_V2_LEAF = "sandbox"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_RUN_DIR_FD = 9  # dash redirects only single-digit fds
_KEEP_FDS = (8, 7, 6, 5)  # the kept directories' fds, opened before the tmpfs hides them
# The interpreter and this library: a sandbox must still see them if they live under /tmp.
DEFAULT_KEPT: tuple[str, ...] = (
    sys.prefix,
    sys.base_prefix,
    str(Path(__file__).resolve().parents[1]),
)
_KILL_TIMEOUT = 10.0

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sh22x"  # struct ifreq: name, then ifr_flags in a 24-byte union


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 128 * 1024 * 1024
    cpu_millicores: int = 500  # 1000 = one core
    max_pids: int = 64

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"Limits.{field.name} must be a positive integer, got {value!r}")


def bring_loopback_up() -> None:
    """Set IFF_UP on ``lo`` in the calling process's network namespace (needs CAP_NET_ADMIN)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(_IFREQ, b"lo", 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))


# The same steps as bring_loopback_up, run inside by the interpreter when iproute2 is absent.
_LOOPBACK_UP_CODE = (
    "import fcntl,socket,struct\n"
    "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
    f"f=struct.unpack('{_IFREQ}',fcntl.ioctl(s.fileno(),{_SIOCGIFFLAGS},"
    f"struct.pack('{_IFREQ}',b'lo',0)))[1]\n"
    f"fcntl.ioctl(s.fileno(),{_SIOCSIFFLAGS},struct.pack('{_IFREQ}',b'lo',f|{_IFF_UP}))\n"
)


# --- cgroups ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hierarchy:
    version: CgroupVersion
    mountpoint: Path
    controllers: frozenset[str]  # v1 only; v2 reads cgroup.controllers
    own: Path  # this process's cgroup directory in the hierarchy


@dataclass(frozen=True)
class _Plan:
    version: CgroupVersion
    bases: tuple[tuple[Path, frozenset[str]], ...]  # (directory to create sdlab/ in, controllers)


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _hierarchies() -> list[_Hierarchy]:
    own_paths: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hierarchy_id, listed, path = line.split(":", 2)
        keys = [""] if hierarchy_id == "0" else listed.split(",")
        own_paths.update(dict.fromkeys(keys, path))
    found: list[_Hierarchy] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        mount_fields, after_fields = before.split(), after.split()
        fstype, options = after_fields[0], after_fields[-1].split(",")
        if fstype == "cgroup2":
            version: CgroupVersion = "v2"
            controllers: frozenset[str] = frozenset()
            own_path = own_paths.get("")
        elif fstype == "cgroup":
            version = "v1"
            controllers = frozenset(o for o in options if o in _CONTROLLERS)
            own_path = next((own_paths[c] for c in controllers if c in own_paths), None)
        else:
            continue
        root, mountpoint = _unescape(mount_fields[3]), Path(_unescape(mount_fields[4]))
        own = mountpoint
        if own_path is not None and (root == "/" or own_path.startswith(root.rstrip("/") + "/")):
            relative = own_path if root == "/" else own_path[len(root.rstrip("/")) :]
            if (mountpoint / relative.lstrip("/")).is_dir():
                own = mountpoint / relative.lstrip("/")
        found.append(_Hierarchy(version, mountpoint, controllers, own))
    return found


def _words(path: Path) -> set[str]:
    try:
        return set(path.read_text().split())
    except OSError:
        return set()


def _v2_can_delegate(base: Path) -> bool:
    if not os.access(base, os.W_OK) or not set(_REQUIRED) <= _words(base / "cgroup.controllers"):
        return False
    is_root = not (base / "cgroup.type").exists()  # only non-root cgroups have cgroup.type
    enabled = set(_REQUIRED) <= _words(base / "cgroup.subtree_control")
    return is_root or enabled or not _words(base / "cgroup.procs")


def _plan() -> _Plan | None:
    hierarchies = _hierarchies()
    for h in hierarchies:
        if h.version == "v2":
            # Its own cgroup, its parent (systemd's Delegate=yes with this process in a leaf,
            # or a user session's app.slice), or the root.
            candidates = [h.own, h.own.parent, h.mountpoint]
            for base in dict.fromkeys(c for c in candidates if c.is_relative_to(h.mountpoint)):
                if _v2_can_delegate(base):
                    available = _words(base / "cgroup.controllers") & set(_CONTROLLERS)
                    return _Plan("v2", ((base, frozenset(available)),))
    by_controller = {c: h for h in hierarchies if h.version == "v1" for c in h.controllers}
    if not all(c in by_controller for c in _REQUIRED):
        return None
    bases: dict[Path, frozenset[str]] = {}
    for controller, h in by_controller.items():
        bases[h.own] = bases.get(h.own, frozenset()) | {controller}
    if not all(os.access(base, os.W_OK) for base in bases):
        return None
    return _Plan("v1", tuple(bases.items()))


def cgroup_support() -> str:
    """ "v2", "v1" or "none": the hierarchy ``Cgroup.create`` would use from this process."""
    plan = _plan()
    return "none" if plan is None else plan.version


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    except OSError as exc:
        raise OSError(exc.errno, f"writing {value!r} to {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _enable_controllers(directory: Path, controllers: Iterable[str]) -> frozenset[str]:
    enabled = _words(directory / "cgroup.subtree_control")
    for controller in controllers:
        if controller in enabled:
            continue
        try:
            _write(directory / "cgroup.subtree_control", f"+{controller}")
            enabled.add(controller)
        except OSError:
            if controller in _REQUIRED:
                raise
    return frozenset(enabled)


def _make_child(parent: Path, name: str) -> Path:
    child = parent / name
    for _ in range(20):  # another sandbox's remove() may rmdir the shared parent meanwhile
        parent.mkdir(exist_ok=True)
        try:
            child.mkdir()
        except FileNotFoundError:
            continue
        except FileExistsError:
            raise FileExistsError(
                errno.EEXIST,
                f"cgroup {child} exists: a sandbox named {name!r} is running or was not removed",
            ) from None
        return child
    raise OSError(errno.ENOENT, f"could not create {child}")


class Cgroup:
    """One sandbox's cgroup: one directory per v1 hierarchy, or one v2 directory."""

    def __init__(
        self, name: str, version: CgroupVersion, dirs: tuple[Path, ...], controllers: frozenset[str]
    ) -> None:
        self.name = name
        self.version = version
        self.dirs = dirs
        self.controllers = controllers

    @classmethod
    def create(cls, name: str, limits: Limits) -> Cgroup:
        _check_name(name)
        plan = _plan()
        if plan is None:
            raise OSError(errno.EACCES, "no usable cgroup hierarchy (cgroup_support() is 'none')")
        made: list[Path] = []
        try:
            if plan.version == "v1":
                controllers: frozenset[str] = frozenset()
                for base, base_controllers in plan.bases:
                    made.append(_make_child(base / PARENT_CGROUP, name))
                    _set_v1_limits(made[-1], base_controllers, limits)
                    controllers |= base_controllers
                return cls(name, "v1", tuple(made), controllers)
            base, available = plan.bases[0]
            _enable_controllers(base, available)
            made.append(_make_child(base / PARENT_CGROUP, name))  # holds the parent in place
            controllers = _enable_controllers(base / PARENT_CGROUP, available) & available
            _set_v2_limits(made[0], controllers, limits)
            made.append(made[0] / _V2_LEAF)
            made[-1].mkdir()
            return cls(name, "v2", (made[0],), controllers)
        except BaseException:
            for directory in reversed(made):
                with contextlib.suppress(OSError):
                    directory.rmdir()
            raise

    def _members(self) -> tuple[Path, ...]:
        return (self.dirs[0] / _V2_LEAF,) if self.version == "v2" else self.dirs

    def procs_file_paths(self) -> list[str]:
        """Where a pid must be written to join (v1: one file per hierarchy)."""
        return [str(directory / "cgroup.procs") for directory in self._members()]

    def pids(self) -> list[int]:
        found: set[int] = set()
        for top in self.dirs:
            for directory, _, _ in os.walk(top):
                found.update(int(word) for word in _words(Path(directory) / "cgroup.procs"))
        return sorted(found)

    def oom_kills(self) -> int:
        """OOM kills in this cgroup (v1 kernels before 4.13 lack the count: limit hits)."""
        for directory in self.dirs:
            for filename in ("memory.events", "memory.oom_control"):
                with contextlib.suppress(OSError):
                    pairs = dict(
                        line.split() for line in (directory / filename).read_text().splitlines()
                    )
                    if "oom_kill" in pairs:
                        return int(pairs["oom_kill"])
            with contextlib.suppress(OSError):
                return int((directory / "memory.failcnt").read_text())
        return 0

    def kill_all(self) -> None:
        """SIGKILL every process in the cgroup, once (``remove`` repeats until empty)."""
        kill_file = self.dirs[0] / "cgroup.kill"
        if self.version == "v2" and kill_file.exists():
            _write(kill_file, "1")
            return
        _signal_verified(self.pids(), self.pids, signal.SIGKILL)

    def remove(self, timeout: float = _KILL_TIMEOUT) -> None:
        """Kill everything in it, wait until it is empty (bounded), then delete it."""
        deadline = time.monotonic() + timeout
        while True:
            self.kill_all()
            if not self.pids() and self._rmdir_all():
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"cgroup {self.name} not removable: processes {self.pids()}")
            time.sleep(0.005)
        for directory in self.dirs:  # the shared parent goes when its last sandbox does
            with contextlib.suppress(OSError):
                directory.parent.rmdir()

    def _rmdir_all(self) -> bool:
        gone = True
        for top in self.dirs:
            for directory, _, _ in os.walk(top, topdown=False):
                try:
                    os.rmdir(directory)
                except FileNotFoundError:
                    pass
                except OSError:
                    gone = False
        return gone


def _set_v1_limits(directory: Path, controllers: frozenset[str], limits: Limits) -> None:
    if "memory" in controllers:
        _write(directory / "memory.limit_in_bytes", str(limits.memory_bytes))
        if (directory / "memory.memsw.limit_in_bytes").exists():
            _write(directory / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
    if "pids" in controllers:
        _write(directory / "pids.max", str(limits.max_pids))
    if "cpu" in controllers:
        _write(directory / "cpu.cfs_period_us", str(_CPU_PERIOD_US))
        _write(directory / "cpu.cfs_quota_us", str(_cpu_quota_us(limits)))


def _set_v2_limits(directory: Path, controllers: frozenset[str], limits: Limits) -> None:
    _write(directory / "memory.max", str(limits.memory_bytes))
    if (directory / "memory.swap.max").exists():
        _write(directory / "memory.swap.max", "0")
    _write(directory / "pids.max", str(limits.max_pids))
    if "cpu" in controllers:
        _write(directory / "cpu.max", f"{_cpu_quota_us(limits)} {_CPU_PERIOD_US}")


def _cpu_quota_us(limits: Limits) -> int:
    return max(1000, limits.cpu_millicores * _CPU_PERIOD_US // 1000)  # the kernel's minimum is 1 ms


def _signal_verified(
    pids: Sequence[int], members: Callable[[], Iterable[int]], signum: signal.Signals
) -> None:
    """Signal ``pids`` through pidfds, only those still listed by ``members()`` once opened,
    so a pid reused by an unrelated process after the listing is never signalled."""
    handles: dict[int, int] = {}
    try:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                handles[pid] = os.pidfd_open(pid)
        still = set(members())
        for pid, fd in handles.items():
            if pid in still:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(fd, signum)
    finally:
        for fd in handles.values():
            os.close(fd)


# --- spawning --------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"sandbox name must match {_NAME.pattern!r}, got {name!r}")


def _tool(name: str) -> str:
    found = shutil.which(name, path=_DEFAULT_PATH)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, "needed to isolate a sandbox (util-linux)", name)
    return found


def _resolve_program(program: str, search_path: str) -> str:
    if "/" not in program:
        found = shutil.which(program, path=search_path)
        if found is None:
            raise FileNotFoundError(
                errno.ENOENT, f"sandbox program not found on PATH={search_path}", program
            )
        program = found
    if not os.path.exists(program):
        raise FileNotFoundError(errno.ENOENT, "sandbox program not found", program)
    if os.path.isdir(program) or not os.access(program, os.X_OK):
        raise PermissionError(errno.EACCES, "sandbox program is not executable", program)
    return os.path.abspath(program)


def _hidden(hide: Iterable[str | os.PathLike[str]], run_dir: Path) -> list[Path]:
    existing = {Path(os.path.realpath(entry)) for entry in hide if os.path.isdir(entry)}
    chosen: list[Path] = []
    for entry in sorted(existing, key=lambda path: len(path.parts)):
        if entry == Path("/") or entry.is_relative_to(run_dir):
            raise ValueError(f"cannot hide {entry}: it is / or inside run_dir {run_dir}")
        if not any(entry.is_relative_to(parent) for parent in chosen):
            chosen.append(entry)
    return chosen


@dataclass(frozen=True)
class MountPlan:
    """What PID 1 mounts, in order: `hidden` (empty tmpfs), then `kept` bound back read-only
    (the program's own code, when it lives under a hidden directory such as /tmp), then
    `hidden_inside` (hidden directories that lie inside a kept one), then run_dir."""

    hidden: tuple[Path, ...]
    kept: tuple[Path, ...]
    hidden_inside: tuple[Path, ...]


def sandbox_ids() -> tuple[int, int] | None:
    """The unprivileged host user and group a sandbox becomes when root starts it:
    ``SDLAB_SANDBOX_IDS`` ("uid:gid"), by default nobody's (65534:65534). None when the
    starter is not root: its sandboxes already run as its own unprivileged user."""
    if os.geteuid() != 0:
        return None
    text = os.environ.get(SANDBOX_IDS_ENV, "65534:65534")
    try:
        uid, _, gid = text.partition(":")
        ids = (int(uid), int(gid or uid))
    except ValueError:
        raise ValueError(f"{SANDBOX_IDS_ENV} must be uid:gid, not {text!r}") from None
    if 0 in ids:
        raise ValueError(f"{SANDBOX_IDS_ENV} must name an unprivileged user, not {text!r}")
    return ids


def unsearchable(paths: Iterable[str | os.PathLike[str]], uid: int, gid: int) -> list[Path]:
    """The directories on the way to `paths` that `uid` and `gid` (and no other group)
    cannot search, such as /root on the way to a Python installed under it."""
    found: set[Path] = set()
    for path in paths:
        real = Path(os.path.realpath(path))
        for directory in (*reversed(real.parents), real):
            info = directory.stat()
            bit = (
                stat.S_IXUSR
                if info.st_uid == uid
                else stat.S_IXGRP
                if info.st_gid == gid
                else stat.S_IXOTH
            )
            if not info.st_mode & bit:
                found.add(directory)
                break
    return sorted(found)


def mount_plan(
    hide: Iterable[str | os.PathLike[str]],
    run_dir: Path,
    keep: Iterable[str | os.PathLike[str]] = (),
) -> MountPlan:
    hidden = _hidden(hide, run_dir)
    wanted = {Path(os.path.realpath(k)) for k in keep if os.path.isdir(k)}
    kept = sorted(
        (
            k
            for k in wanted
            if any(k.is_relative_to(h) for h in hidden) and not run_dir.is_relative_to(k)
        ),
        key=lambda path: len(path.parts),
    )
    kept = [k for k in kept if not any(k != other and k.is_relative_to(other) for other in kept)]
    if len(kept) > len(_KEEP_FDS):
        raise ValueError(f"at most {len(_KEEP_FDS)} directories can be kept, not {len(kept)}")
    inside = sorted(
        {Path(os.path.realpath(h)) for h in hide if os.path.isdir(h)} - set(hidden),
        key=lambda path: len(path.parts),
    )
    hidden_inside = [
        h
        for h in inside
        if any(h.is_relative_to(k) for k in kept) and not h.is_relative_to(run_dir)
    ]
    return MountPlan(tuple(hidden), tuple(kept), tuple(hidden_inside))


def _fstab_field(path: Path) -> str:
    text = str(path).replace("\\", "\\134")
    return text.replace(" ", "\\040").replace("\t", "\\011").replace("\n", "\\012")


def _fstab(plan: MountPlan, run_dir: Path, limits: Limits) -> bytes:
    """What ``mount -a`` does inside, in order: an empty tmpfs over each hidden directory
    (same mode as the host's), the kept directories bound back read-only (and what is
    hidden inside them hidden again), then run_dir bound back at its own path, read-write."""

    def tmpfs(path: Path) -> str:
        return (
            f"sdlab-hidden {_fstab_field(path)} tmpfs rw,nosuid,nodev,size={limits.memory_bytes},"
            f"mode={stat.S_IMODE(path.stat().st_mode):o},X-mount.mkdir 0 0"
        )

    lines = [tmpfs(path) for path in plan.hidden]
    lines += [
        f"/proc/self/fd/{fd} {_fstab_field(path)} none bind,ro,X-mount.mkdir 0 0"
        for fd, path in zip(_KEEP_FDS, plan.kept, strict=False)
    ]
    lines += [tmpfs(path) for path in plan.hidden_inside]
    lines.append(f"/proc/self/fd/{_RUN_DIR_FD} {_fstab_field(run_dir)} none bind,X-mount.mkdir 0 0")
    return ("\n".join(lines) + "\n").encode()


def _inner_script(
    run_dir: Path, limits: Limits, *, rlimits: bool, kept: Sequence[Path] = ()
) -> str:
    """PID 1's steps before it becomes argv; stdin is the fstab, run_dir (and each kept
    directory) is opened first because the tmpfs over its parent hides it."""
    quote, run, mount = shlex.quote, shlex.quote(str(run_dir)), shlex.quote(_tool("mount"))
    ip = shutil.which("ip", path=_DEFAULT_PATH)
    loopback = (
        f"{quote(ip)} link set lo up"
        if ip
        else f"{quote(sys.executable)} -I -S -c {quote(_LOOPBACK_UP_CODE)}"
    )
    opened = [
        f"exec {fd}<{quote(str(path))} || exit 123"
        for fd, path in zip(_KEEP_FDS, kept, strict=False)
    ]
    closed = [f"exec {fd}<&-" for fd in _KEEP_FDS[: len(kept)]]
    lines = [
        f"exec {_RUN_DIR_FD}<{run} || exit 121",
        *opened,
        f"{loopback} || exit 122",
        f"{mount} -a -c -T /proc/self/fd/0 || exit 123",
        f"{mount} -o remount,bind,ro / || exit 124",
        *closed,
        f"exec {_RUN_DIR_FD}<&- </dev/null",
        f"cd {run} || exit 121",
    ]
    # A user and mount namespace below the ones that made the mounts: the kernel locks every
    # mount, so the sandbox cannot unmount what hides the host or make / writable again.
    lock = f"{quote(_tool('unshare'))} --user --map-root-user --mount --propagation unchanged --"
    if rlimits:  # set inside the new user namespace, where RLIMIT_NPROC counts only the sandbox
        prlimit = quote(_tool("prlimit"))
        limit_args = f"--as={limits.memory_bytes} --nproc={limits.max_pids}"
        lines.append(f'exec {prlimit} {limit_args} -- {lock} "$@" || exit 126')
    else:
        lines.append(f'exec {lock} "$@"')
    return "\n".join(lines) + "\n"


def _outer_script(name: str, cgroup: Cgroup | None, inner: str) -> str:
    """The outermost process: join the cgroup while nothing else runs, then unshare."""
    lines = [
        f"echo $$ >{shlex.quote(path)} || exit 125"
        for path in (cgroup.procs_file_paths() if cgroup else [])
    ]
    command = [_tool("unshare"), "--user", "--map-root-user", "--pid", "--fork", "--kill-child"]
    command += ["--mount-proc", "--net", "--mount", "--uts", "--ipc"]
    if os.path.exists("/proc/self/ns/cgroup"):
        command.append("--cgroup")
    nice = shutil.which("nice", path=_DEFAULT_PATH)
    if cgroup is None and nice:  # no CPU quota without cgroups: only a lower priority
        command = [nice, "-n", "10", *command]
    command += ["/bin/sh", "-c", inner, f"sdlab-{name}"]
    lines.append(f'exec {shlex.join(command)} "$@"')
    return "\n".join(lines) + "\n"


class IsolatedProcess:
    """A running sandbox. ``pid`` is the outermost process (a child of the caller)."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        *,
        name: str,
        run_dir: Path,
        cgroup: Cgroup | None,
    ) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.name = name
        self.run_dir = run_dir
        self.cgroup = cgroup
        self.limits_via = f"cgroup-{cgroup.version}" if cgroup else "rlimit"

    def poll(self) -> int | None:
        """PID 1's exit status (-N: killed by signal N, but SIGKILL shows as 1 with
        util-linux before 2.39), or None while it runs."""
        return self._popen.poll()

    def wait(self, timeout: float) -> int:
        """Like ``poll`` but waits up to ``timeout`` seconds (``subprocess.TimeoutExpired``)."""
        if self._popen.poll() is None:  # a pidfd wakes up on exit; Popen.wait(timeout) naps
            pidfd = os.pidfd_open(self.pid)
            try:
                if not _exits_within(pidfd, timeout):
                    raise subprocess.TimeoutExpired(self._popen.args, timeout)
            finally:
                os.close(pidfd)
        return self._popen.wait()

    def namespace_pid(self) -> int | None:
        """The host pid of the sandbox's PID 1, once it exists and while it runs."""
        children = _children(self.pid)
        return children[0] if children else None

    def terminate(self, grace_seconds: float = 5.0) -> None:
        """SIGTERM to PID 1, wait up to ``grace_seconds``, then SIGKILL it (the kernel kills
        the rest of the namespace), wait until PID 1 is gone, reap, and remove the cgroup.
        Idempotent; call it even after the sandbox exited."""
        if grace_seconds < 0:
            raise ValueError(f"grace_seconds must be >= 0, got {grace_seconds!r}")
        init = self._open_pid1()
        try:
            if init is not None:
                _pidfd_signal(init, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.wait(grace_seconds)
                if self._popen.poll() is None:
                    _pidfd_signal(init, signal.SIGKILL)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.wait(_KILL_TIMEOUT)  # it exits once the namespace is empty
            if self._popen.poll() is None:  # no PID 1 (setup failed or hangs) or it won't go
                self._popen.kill()  # --kill-child SIGKILLs a PID 1 forked meanwhile
                self.wait(_KILL_TIMEOUT)
            # PID 1 exits only after every other process of its namespace is gone.
            if init is not None and not _exits_within(init, _KILL_TIMEOUT):
                raise TimeoutError(f"sandbox {self.name}: PID 1 still there after SIGKILL")
        finally:
            if init is not None:
                os.close(init)
        if self.cgroup is not None:
            self.cgroup.remove()

    def _open_pid1(self) -> int | None:
        """A pidfd on PID 1, waiting (bounded) while the outermost process sets up."""
        deadline = time.monotonic() + _KILL_TIMEOUT
        while self._popen.poll() is None and time.monotonic() < deadline:
            for pid in _children(self.pid):
                with contextlib.suppress(ProcessLookupError):
                    pidfd = os.pidfd_open(pid)
                    if pid in _children(self.pid):  # still ours now that the pidfd pins it
                        return pidfd
                    os.close(pidfd)
            time.sleep(0.001)
        return None


def _exits_within(pidfd: int, timeout: float) -> bool:
    poller = select.poll()  # not select.select: a busy host's fds go past FD_SETSIZE
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(timeout * 1000))


def _pidfd_signal(pidfd: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(pidfd, signum)


def _children(pid: int) -> list[int]:
    try:
        return [int(word) for word in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def spawn_isolated(
    argv: Sequence[str],
    *,
    name: str,
    run_dir: Path,
    limits: Limits,
    env: Mapping[str, str] | None = None,
    hide: Iterable[str | os.PathLike[str]] = DEFAULT_HIDDEN,
    use_cgroups: bool = True,
    log_path: Path | None = None,
    keep: Iterable[str | os.PathLike[str]] = DEFAULT_KEPT,
) -> IsolatedProcess:
    """Start ``argv`` as PID 1 of a new sandbox and return without waiting for it.

    ``name`` names the cgroup (unique among running sandboxes). ``run_dir`` is created if
    missing; it is the sandbox's working directory and HOME. The environment is PATH,
    LANG and HOME plus ``env``: the caller's own (database URLs, secrets) is not passed.
    stdout and stderr are appended to ``log_path`` (default ``run_dir/sandbox.log``).
    ``use_cgroups=False`` forces the rlimit fallback. ``keep``: directories the program
    needs (its interpreter, its code) bound back read-only if they lie under a hidden one,
    as when the whole checkout lives under /tmp.
    """
    _check_name(name)
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a Limits, got {type(limits).__name__}")
    if isinstance(argv, str) or not argv or not all(isinstance(arg, str) for arg in argv):
        raise ValueError(f"argv must be a non-empty list of strings, got {argv!r}")
    run_dir = Path(os.path.realpath(run_dir))
    environment = {"PATH": _DEFAULT_PATH, "LANG": "C.UTF-8", "HOME": str(run_dir), **(env or {})}
    program = _resolve_program(argv[0], environment["PATH"])
    run_dir.mkdir(parents=True, exist_ok=True)
    plan = mount_plan(hide, run_dir, keep)
    for path in plan.hidden:
        visible = Path(program).is_relative_to(run_dir) or any(
            Path(program).is_relative_to(k) for k in plan.kept
        )
        if Path(program).is_relative_to(path) and not visible:
            raise ValueError(f"sandbox program {program} is under {path}, hidden from the sandbox")
    cgroup = Cgroup.create(name, limits) if use_cgroups and cgroup_support() != "none" else None
    fstab = os.memfd_create("sdlab-fstab", os.MFD_CLOEXEC)
    try:
        os.write(fstab, _fstab(plan, run_dir, limits))
        inner = _inner_script(run_dir, limits, rlimits=cgroup is None, kept=plan.kept)
        outer = _outer_script(name, cgroup, inner)
        with open(log_path or run_dir / "sandbox.log", "ab") as log:
            popen = subprocess.Popen(  # noqa: S603 (running the caller's argv is the point)
                ["/bin/sh", "-c", outer, f"sdlab-{name}", program, *argv[1:]],
                stdin=fstab,
                stdout=log,
                stderr=log,
                env=environment,
                cwd=run_dir,
                start_new_session=True,
            )
    except BaseException:
        if cgroup is not None:
            cgroup.remove()
        raise
    finally:
        os.close(fstab)
    return IsolatedProcess(popen, name=name, run_dir=run_dir, cgroup=cgroup)
