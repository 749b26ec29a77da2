"""A fork server for sandboxes: it has imported everything a sandbox runs, so starting one
is a fork, not a fresh interpreter (about 230 ms of imports saved per start).

For each request the zygote forks an outer process, which joins the sandbox's cgroup,
unshares user, mount, network, PID, UTS and IPC namespaces and forks PID 1; PID 1 hides the
host's directories, binds its run directory back, makes `/` read-only, brings loopback up
and becomes the sandbox's supervisor. These are the steps sandbox.isolation performs with
util-linux's tools, done here with system calls; the guarantees are the same, and one more:
when root runs the zygote, PID 1 makes the host's world as root and then becomes an
unprivileged host user (the request's `ids`) for good, in a user namespace that maps only
that user, before the sandbox's own code runs.

    python -m sandbox.zygote --socket /path/zygote.sock       (LocalBackend starts it)
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import gc
import json
import os
import select
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from sandbox.isolation import Cgroup, Limits, bring_loopback_up, cgroup_support

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME = 16384, 1 << 18, 1 << 21
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
MAPPED_WITHIN_S = 10.0  # the outer process waits this long for the zygote to map its ids
# statvfs flags of a mount, as mount(2) flags: a remount must keep the locked ones.
ST_TO_MS = {
    1: MS_RDONLY,
    2: MS_NOSUID,
    4: MS_NODEV,
    8: MS_NOEXEC,
    1024: MS_NOATIME,
    2048: MS_NODIRATIME,
    4096: MS_RELATIME,
}
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    _check(
        _libc.mount(
            source and source.encode(),
            target.encode(),
            fstype and fstype.encode(),
            ctypes.c_ulong(flags),
            data and data.encode(),
        ),
        f"mount {target}",
    )


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def _pid1(request: dict[str, Any]) -> None:
    """Inside the new namespaces, as PID 1: make the world the sandbox sees, then run."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the outer process gone: so are we
    run_dir = request["run_dir"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # Opened in this mount namespace, before the tmpfs over their parents hides them.
    run_dir_fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    kept = [(path, os.open(path, os.O_RDONLY | os.O_DIRECTORY)) for path in request.get("kept", [])]
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for hidden in request["hide"]:
        _hide(hidden)
    for path, fd in kept:  # the interpreter and the code, when they live under /tmp
        os.makedirs(path, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        os.close(fd)
        locked = sum(ms for st, ms in ST_TO_MS.items() if os.statvfs(path).f_flag & st)
        _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | locked)
    for hidden in request.get("hidden_inside", []):
        _hide(hidden)
    os.makedirs(run_dir, exist_ok=True)
    _mount(f"/proc/self/fd/{run_dir_fd}", run_dir, None, MS_BIND | MS_REC)
    os.close(run_dir_fd)
    locked = sum(ms for st, ms in ST_TO_MS.items() if os.statvfs("/").f_flag & st)
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | locked)
    bring_loopback_up()
    _lock_the_world(request.get("ids"))
    if request.get("rlimits"):
        import resource

        limits = request["limits"]
        resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"], limits["memory_bytes"]))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["max_pids"], limits["max_pids"]))
    os.chdir(run_dir)
    os.environ.clear()
    os.environ.update({"PATH": PATH, "LANG": "C.UTF-8", "HOME": run_dir, **request["env"]})
    from sandbox.runtime import main

    code = main(request["argv"])
    sys.stdout.flush()
    os._exit(code)


def _hide(path: str) -> None:
    """An empty tmpfs over `path`: /tmp stays writable by all, and every hidden directory
    can be searched, since the run directory or kept code may lie below it."""
    mode = os.stat(path).st_mode & 0o7777 | 0o755
    _mount("sdlab-hidden", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size=1m,mode={mode:o}")


def _lock_the_world(ids: list[int] | None) -> None:
    """Enters a user and mount namespace of its own below the ones that made the mounts:
    the kernel then locks every mount, so the sandbox can neither unmount the tmpfs that
    hides the host's directories nor make `/` writable, and holds no capability over its
    network. No new privileges can be gained by exec either.

    With `ids` (a sandbox started by root), the sandbox first becomes that unprivileged
    host user, which alone is mapped in the new namespace: root inside is then nobody on
    the host, and host root's files are as closed to it as to any other user."""
    uid, gid = ids if ids else (0, 0)
    if ids:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        # A change of user makes a process undumpable, and its /proc files root's: it
        # could not write its own uid_map below.
        _check(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "dumpable")
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # also cleared by the change
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare (lock)")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1")
    _write("/proc/self/gid_map", f"0 {gid} 1")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _outer(request: dict[str, Any], procs_files: list[str], mapped: tuple[int, int]) -> None:
    """The outermost process: joins the cgroup before anything forks, unshares, forks PID 1
    and lives as long as it does (its exit status is PID 1's). With `ids`, the zygote
    writes its id maps (`mapped`: it says when, and waits for our word to)."""
    for path in procs_files:
        _write(path, str(os.getpid()))
    os.setsid()
    log = os.open(
        Path(request["run_dir"]) / "sandbox.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
    )
    os.dup2(log, 1)
    os.dup2(log, 2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    # Nothing of the zygote's (its socket, a caller's connection) goes in.
    low, high = sorted(mapped)
    os.closerange(3, low)
    os.closerange(low + 1, high)
    os.closerange(high + 1, 65536)
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC
    flags |= CLONE_NEWCGROUP  # after joining the cgroup: the sandbox sees it as its root
    _check(_libc.unshare(flags), "unshare")
    ask, told = mapped
    if request.get("ids"):
        os.write(ask, b"map")  # the zygote maps our root to its own and the sandbox's ids
        if os.read(told, 2) != b"ok":
            raise OSError(errno.EPERM, "the zygote did not map the sandbox's user")
    else:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
    os.close(ask)
    os.close(told)
    child = os.fork()
    if child == 0:
        try:
            _pid1(request)
        except BaseException as exc:  # never return into the zygote's code
            print(
                json.dumps(
                    {"level": "error", "message": "sandbox setup failed", "error": repr(exc)}
                ),
                flush=True,
            )
            os._exit(120)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGTERM))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _map_ids(pid: int, asked: int, tell: int, ids: list[int]) -> None:
    """Once the outer process has its user namespace: root inside is root here (PID 1 needs
    it to hide the host's directories and bind back the kept ones, which root's own
    directories may hold), and the sandbox's ids are themselves, for PID 1 to become them
    before anything of the sandbox runs. Only a process with CAP_SETUID here may write a
    map of two users, so the zygote writes it."""
    ready, _, _ = select.select([asked], [], [], MAPPED_WITHIN_S)
    if not ready or os.read(asked, 3) != b"map":
        return  # it failed before it asked: its own error says why
    uid, gid = ids
    _write(f"/proc/{pid}/uid_map", f"0 0 1\n{uid} {uid} 1")
    _write(f"/proc/{pid}/gid_map", f"0 0 1\n{gid} {gid} 1")
    os.write(tell, b"ok")


def spawn(request: dict[str, Any]) -> dict[str, Any]:
    limits = Limits(**request["limits"])
    cgroup = Cgroup.create(request["name"], limits) if cgroup_support() != "none" else None
    request["rlimits"] = cgroup is None
    procs = cgroup.procs_file_paths() if cgroup else []
    asked, ask = os.pipe()
    told, tell = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(asked)
            os.close(tell)
            _outer(request, procs, (ask, told))
        except BaseException as exc:
            print(
                json.dumps(
                    {"level": "error", "message": "sandbox setup failed", "error": repr(exc)}
                ),
                file=sys.stderr,
                flush=True,
            )
            code = 119
        finally:
            os._exit(code)
    os.close(ask)
    os.close(told)
    try:
        if request.get("ids"):
            _map_ids(pid, asked, tell, request["ids"])
    finally:
        os.close(asked)
        os.close(tell)
    return {
        "pid": pid,
        "cgroup": None
        if cgroup is None
        else {
            "name": cgroup.name,
            "version": cgroup.version,
            "dirs": [str(d) for d in cgroup.dirs],
            "controllers": sorted(cgroup.controllers),
        },
    }


def reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def serve(socket_path: str) -> None:
    # Everything a sandbox runs is imported now; frozen, the forks share those pages.
    from sandbox import control, runtime  # noqa: F401 (imported for the forks to share)
    from sandbox.runtime import service_for
    from sandbox.topology import Topology

    service_for("gateway", Topology(), Path("."))
    runtime.event_loop_policy()
    gc.freeze()
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wake accept() so exited sandboxes are reaped
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    os.chmod(socket_path, 0o600)
    server.listen(16)
    print(json.dumps({"message": "zygote ready", "pid": os.getpid()}), flush=True)
    while True:
        reap()
        try:
            connection, _ = server.accept()
        except InterruptedError:
            continue
        with connection:
            line = connection.makefile().readline()
            if not line.strip():
                continue  # a probe: the caller only checked that the zygote listens
            pidfd = -1
            try:
                answer = spawn(json.loads(line))
                # Opened before this loop can reap it: the caller holds the process itself,
                # never a pid number that could be reused.
                pidfd = os.pidfd_open(answer["pid"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            with contextlib.suppress(OSError):  # the caller may have given up; the zygote lives on
                payload = (json.dumps(answer) + "\n").encode()
                if pidfd >= 0:
                    socket.send_fds(connection, [payload], [pidfd])
                else:
                    connection.sendall(payload)
            if pidfd >= 0:
                os.close(pidfd)


def request(
    socket_path: str, body: dict[str, Any], timeout: float = 10.0
) -> tuple[dict[str, Any], int]:
    """Asks for a sandbox; returns the answer and a pidfd of its outer process."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        client.connect(socket_path)
        client.sendall((json.dumps(body) + "\n").encode())
        data, fds, _, _ = socket.recv_fds(client, 65536, 1)
        while not data.endswith(b"\n"):
            more = client.recv(65536)
            if not more:
                break
            data += more
    answer = json.loads(data)
    if "error" in answer or not fds:
        for fd in fds:
            os.close(fd)
        raise OSError(
            errno.EIO, f"the zygote could not start the sandbox: {answer.get('error', 'no pidfd')}"
        )
    return answer, fds[0]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.zygote", description=__doc__)
    parser.add_argument("--socket", required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # The fork server ends with the process that started it, even a killed one (a Celery
    # worker's SIGKILL); the sandboxes it forked go on until stopped, expired or reaped.
    parent = int(os.environ.get("SANDBOX_ZYGOTE_PARENT") or os.getppid())
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        sys.exit(0)  # it died before the signal was armed
    serve(args.socket)


if __name__ == "__main__":
    main()
