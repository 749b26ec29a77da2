"""File descriptors as a real, limited resource: the process's RLIMIT_NOFILE set by a
knob, and an audit log that a buggy code path opens per query and never closes."""

from __future__ import annotations

import contextlib
import errno
import os
import resource
from typing import IO, Any

from sandbox.telemetry import ServiceMetrics


class Descriptors:
    def __init__(self, service: str, metrics: ServiceMetrics, path: str) -> None:
        self.service = service
        self.path = path
        self.soft, self.hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.limit = self.soft
        self.leaked: list[IO[str]] = []
        self.last_count = 0
        self.open_fds = metrics.gauge("sdlab_open_fds", "File descriptors open.", ["service"])
        self.fd_limit = metrics.gauge(
            "sdlab_fd_limit", "The process's limit on open files (RLIMIT_NOFILE).", ["service"]
        )
        self.leaked_total = metrics.counter(
            "sdlab_fd_leaked", "Files opened and never closed.", ["service"]
        )
        self.refused = metrics.counter(
            "sdlab_fd_exhausted",
            "Opens refused with EMFILE: the limit on open files was reached.",
            ["service"],
        )
        self.fd_limit.labels(service).set(self.limit)

    def apply(self, knobs: dict[str, Any]) -> None:
        """Lowers (or gives back) the soft limit: a real setrlimit, as `ulimit -n` does."""
        wanted = int(knobs.get("fd_limit", 0) or 0)
        limit = min(wanted, self.hard) if wanted > 0 else self.soft
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, self.hard))
        self.limit = limit
        self.fd_limit.labels(self.service).set(limit)
        if knobs.get("fd_leak_fixed") or not knobs.get("fd_leak_per_query"):
            # The fix deployed (or the leak gone): the leaked files are closed too.
            for handle in self.leaked:
                with contextlib.suppress(OSError):
                    handle.close()
            self.leaked = []

    def audit(self, knobs: dict[str, Any], line: str) -> None:
        """Appends a line to the audit log; the buggy path keeps the file open for ever."""
        leaks = int(knobs.get("fd_leak_per_query", 0) or 0)
        if not leaks or knobs.get("fd_leak_fixed"):
            return
        try:
            for _ in range(leaks):
                handle = open(self.path, "a")  # noqa: SIM115 (the leak is the lesson)
                handle.write(line + "\n")
                handle.flush()
                self.leaked.append(handle)
                self.leaked_total.labels(self.service).inc()
        except OSError as exc:
            if exc.errno == errno.EMFILE:
                self.refused.labels(self.service).inc()
            raise

    def count(self) -> int:
        """Open descriptors; at the limit listing them needs one more, so the limit it is."""
        try:
            self.last_count = len(os.listdir("/proc/self/fd")) - 1  # the listing's own
        except OSError as exc:
            if exc.errno == errno.EMFILE:
                self.last_count = self.limit
        self.open_fds.labels(self.service).set(self.last_count)
        return self.last_count
