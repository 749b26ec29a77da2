"""What the isolation tests run inside a sandbox (stdlib only, started as PID 1).

``python sandbox_program.py <mode> [args]``. A mode writes what it found as JSON to
``result.json`` (or ``ready.json`` when it keeps running) in its working directory, the
sandbox's run_dir, where the test reads it. Nothing here runs longer than LIFETIME.
"""

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

LIFETIME = 120.0  # seconds; the tests stop sandboxes long before
CONTROL_SOCKET = "control.sock"


def report(filename: str, data: object) -> None:
    Path(f"{filename}.tmp").write_text(json.dumps(data))
    os.replace(f"{filename}.tmp", filename)


def exit_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))


def outcome(family: socket.AddressFamily, address: str | tuple[str, int]) -> str:
    """'connected' or the errno name of the failure."""
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(3)
        try:
            sock.connect(address)
        except TimeoutError:
            return "timeout"
        except OSError as exc:
            return errno.errorcode.get(exc.errno or 0, str(exc))
        return "connected"


def probe(targets: list[str]) -> None:
    """Each target is host:port or a Unix socket path."""
    found = {}
    for target in targets:
        if target.startswith("/"):
            found[target] = outcome(socket.AF_UNIX, target)
        else:
            host, port = target.rsplit(":", 1)
            found[target] = outcome(socket.AF_INET, (host, int(port)))
    report("result.json", found)


def serve(server: socket.socket, reply: bytes, deadline: float) -> None:
    server.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(5)
            if conn.recv(64):
                conn.sendall(reply)


def serve_in_background(server: socket.socket, reply: bytes, deadline: float) -> None:
    threading.Thread(target=serve, args=(server, reply, deadline), daemon=True).start()


def unix_server() -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(CONTROL_SOCKET)
    server.listen()
    return server


def listen(port: int) -> None:
    """A TCP listener on the sandbox's own 127.0.0.1 and a control socket in run_dir."""
    exit_on_sigterm()
    deadline = time.monotonic() + LIFETIME
    server = socket.create_server(("127.0.0.1", port))
    serve_in_background(server, b"pong", deadline)
    serve_in_background(unix_server(), b"pong", deadline)
    report("ready.json", {"self": outcome(socket.AF_INET, ("127.0.0.1", port))})
    time.sleep(LIFETIME)


def serve_unix() -> None:
    exit_on_sigterm()
    deadline = time.monotonic() + LIFETIME
    serve_in_background(unix_server(), f"pong from pid {os.getpid()}".encode(), deadline)
    report("ready.json", {"pid": os.getpid()})
    time.sleep(LIFETIME)


def loopback() -> None:
    """A second process of the sandbox talks to this one over 127.0.0.1."""
    server = socket.create_server(("127.0.0.1", 0))
    serve_in_background(server, b"pong", time.monotonic() + LIFETIME)
    port = server.getsockname()[1]
    client = subprocess.run(
        [sys.executable, "-I", __file__, "client", str(port)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    report("result.json", {"client_rc": client.returncode, "reply": client.stdout.decode()})


def client(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"ping")
        sys.stdout.write(sock.recv(64).decode())


def hog(total: int) -> None:
    chunks: list[bytes] = []
    try:
        while len(chunks) * (8 << 20) < total:
            chunks.append(b"x" * (8 << 20))  # written, so resident and charged
    except MemoryError:
        chunks.clear()
        report("result.json", {"outcome": "MemoryError"})
        sys.exit(3)
    report("result.json", {"outcome": "allocated", "bytes": len(chunks) * (8 << 20)})


def fork_bomb(seconds: float) -> None:
    """Every process forks as fast as it can until the deadline; the first EAGAIN is
    recorded in eagain.json by whichever process meets it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.fork()
        except OSError as exc:
            mine = f"eagain.{os.getpid()}"
            Path(mine).write_text(json.dumps({"errno": errno.errorcode[exc.errno or 0]}))
            with contextlib.suppress(FileExistsError):
                os.link(mine, "eagain.json")  # complete when it appears; the first one wins
            os.unlink(mine)
            time.sleep(0.01)
    os._exit(0)


def processes() -> None:
    child = subprocess.Popen([sys.executable, "-I", "-c", f"import time; time.sleep({LIFETIME})"])
    visible = sorted(int(entry) for entry in os.listdir("/proc") if entry.isdigit())
    report("ready.json", {"pid": os.getpid(), "visible": visible, "child": child.pid})
    time.sleep(LIFETIME)


def sleeper(marker: str, depth: int) -> None:
    if depth > 0:
        subprocess.Popen([sys.executable, "-I", __file__, "sleeper", marker, str(depth - 1)])
    time.sleep(LIFETIME)


def orphan(marker: str) -> None:
    """Leaves a sleeper behind, reparented to PID 1."""
    subprocess.Popen([sys.executable, "-I", __file__, "sleeper", marker, "0"])


def tree(marker: str) -> None:
    """PID 1 without a SIGTERM handler, children, grandchildren and an orphan."""
    for _ in range(2):
        subprocess.Popen([sys.executable, "-I", __file__, "sleeper", marker, "1"])
    subprocess.run([sys.executable, "-I", __file__, "orphan", marker], check=True, timeout=30)
    report("ready.json", {})
    time.sleep(LIFETIME)


def filesystem(marker: str, host_dir: str) -> None:
    def attempt(path: str) -> str:
        try:
            Path(path).write_text(marker)
        except OSError as exc:
            return errno.errorcode.get(exc.errno or 0, str(exc))
        return "written"

    report(
        "result.json",
        {
            "host_dir": attempt(os.path.join(host_dir, f".probe-{marker}")),
            "tmp": attempt(f"/tmp/probe-{marker}"),
            "run_dir": attempt(f"probe-{marker}"),
            "run": sorted(os.listdir("/run")),
            "cwd": os.getcwd(),
        },
    )


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "probe":
        probe(args)
    elif mode == "listen":
        listen(int(args[0]))
    elif mode == "serve-unix":
        serve_unix()
    elif mode == "loopback":
        loopback()
    elif mode == "client":
        client(int(args[0]))
    elif mode == "hog":
        hog(int(args[0]))
    elif mode == "fork-bomb":
        fork_bomb(float(args[0]))
    elif mode == "processes":
        processes()
    elif mode == "sleeper":
        sleeper(args[0], int(args[1]))
    elif mode == "orphan":
        orphan(args[0])
    elif mode == "tree":
        tree(args[0])
    elif mode == "filesystem":
        filesystem(args[0], args[1])
    else:
        sys.exit(f"unknown mode {mode!r}")
