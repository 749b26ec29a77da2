"""A service's log lines reach the supervisor as written, and a slow supervisor never
holds a service up."""

import io
import json
import socket

from sandbox.telemetry import LogRing


def test_each_line_is_sent_as_it_is_kept(monkeypatch):
    received, sent = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    sent.setblocking(False)
    monkeypatch.setattr(LogRing, "forward", sent)
    ring = LogRing("cache", stream=io.StringIO())
    ring.log("warning", "cache snapshot failed", error="disk full")
    ring.log("info", "cache restarted", entries=3)
    lines = [json.loads(received.recv(2**16)) for _ in range(2)]
    assert lines == list(ring.lines)
    assert [line["seq"] for line in lines] == [1, 2]


def test_a_full_queue_drops_lines_instead_of_waiting(monkeypatch):
    received, sent = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    sent.setblocking(False)
    monkeypatch.setattr(LogRing, "forward", sent)
    ring = LogRing("gateway", stream=io.StringIO())
    for n in range(5000):  # far more than the socket queues; nobody reads them
        ring.log("error", "request answered with an error", n=n)
    assert ring.sequence == 5000
    assert len(ring.lines) == 200
    received.close()
