"""A small synchronous client of a sandbox's control API, over its Unix socket or TCP.

Standard library only, so the platform, the CLI and the tests can all use it.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any
from urllib.parse import urlsplit


class SandboxError(Exception):
    """The sandbox refused a request; `status` and `body` say why (`message` is for people)."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        self.message = body.get("message", str(body)) if isinstance(body, dict) else str(body)
        super().__init__(f"{status}: {self.message}")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("sandbox", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class SandboxClient:
    """`address` is `unix:///path/to/control.sock` or `http://host:port`."""

    def __init__(self, address: str, timeout: float = 5.0) -> None:
        self.address = address
        self.timeout = timeout
        parts = urlsplit(address)
        if parts.scheme not in ("unix", "http"):
            raise ValueError(f"sandbox address must be unix:// or http://, not {address!r}")
        self.parts = parts

    def _connection(self) -> http.client.HTTPConnection:
        if self.parts.scheme == "unix":
            return _UnixConnection(self.parts.path, self.timeout)
        return http.client.HTTPConnection(
            self.parts.hostname or "127.0.0.1", self.parts.port or 80, timeout=self.timeout
        )

    def request(self, method: str, path: str, body: Any = None, *, raw: bool = False) -> Any:
        connection = self._connection()
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if raw:
            if response.status >= 400:
                raise SandboxError(response.status, data.decode(errors="replace"))
            return data.decode()
        decoded = json.loads(data) if data else None
        if response.status >= 400:
            raise SandboxError(response.status, decoded)
        return decoded

    def health(self) -> dict[str, Any]:
        try:
            return self.request("GET", "/health")
        except SandboxError as exc:
            if exc.status == 503 and isinstance(exc.body, dict):
                return exc.body
            raise

    def state(self, logs_since: int | None = None) -> dict[str, Any]:
        """With `logs_since`, the state also holds the log lines after it, as `logs`."""
        if logs_since is None:
            return self.request("GET", "/state")
        return self.request("GET", f"/state?logs_since={logs_since}")

    def figures(self) -> dict[str, float]:
        return self.state()["figures"]

    def metrics(self) -> str:
        return self.request("GET", "/metrics", raw=True)

    def catalog(self) -> dict[str, Any]:
        return self.request("GET", "/catalog")

    def logs(self, since: int = 0) -> list[dict[str, Any]]:
        return self.request("GET", f"/logs?since={since}")

    def scenario_enable(
        self, slug: str, parameters: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return self.request("POST", f"/scenarios/{slug}", parameters or {})

    def scenario_disable(self, slug: str) -> dict[str, Any]:
        return self.request("DELETE", f"/scenarios/{slug}")

    def mitigation_enable(
        self, slug: str, parameters: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return self.request("POST", f"/mitigations/{slug}", parameters or {})

    def mitigation_disable(self, slug: str) -> dict[str, Any]:
        return self.request("DELETE", f"/mitigations/{slug}")

    def load(self, **settings: float) -> dict[str, Any]:
        return self.request("PUT", "/load", settings)

    def stop(self) -> None:
        self.request("POST", "/stop")
