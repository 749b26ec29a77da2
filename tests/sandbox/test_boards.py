"""A service keeps its metric values and log tail on boards its supervisor reads without
asking it: what a board reads back must be what prometheus_client's collect() gives, and
the lines the service logged."""

import asyncio
import contextlib
import io
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client import values as prometheus_values

from sandbox.boards import SLOTS, LogBoard, MetricBoard, ServiceBoards, install, value_class
from sandbox.services.base import GAUGE_PERIOD_S, UNWATCHED_GAUGE_S, Service
from sandbox.telemetry import LogRing, ServiceMetrics


@pytest.fixture
def board(monkeypatch: pytest.MonkeyPatch) -> Iterator[MetricBoard]:
    board = MetricBoard()
    # What install() does in a forked service, undone after the test.
    monkeypatch.setattr(prometheus_values, "ValueClass", value_class(board))
    yield board
    board.close()


def collected(metrics: ServiceMetrics) -> dict:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def read(board: MetricBoard) -> dict:
    return {(name, tuple(sorted(labels.items()))): value for name, labels, value in board.samples()}


def serve_some(metrics: ServiceMetrics, worker: int) -> None:
    for n in range(500):
        route = ("/products", "/orders")[n % 2]
        metrics.requests.labels("gateway", route, str(200 + 300 * (n % 7 == 0))).inc()
        metrics.latency.labels("gateway", route).observe(0.0007 * (n % 40) * (worker + 1))
        metrics.client_calls.labels("gateway", "cache", ("ok", "timeout")[n % 5 == 0]).inc()
        metrics.pool_in_use.labels("gateway", "http").set(n % 9)
        metrics.in_flight.labels("gateway").inc()
        metrics.in_flight.labels("gateway").dec()


def test_a_board_reads_back_what_the_registry_collects(board):
    metrics = ServiceMetrics("gateway")
    threads = [threading.Thread(target=serve_some, args=(metrics, w)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = collected(metrics)
    # counters, gauges and every histogram series (cumulative buckets, _count, _sum)
    assert (
        expected[
            (
                "sdlab_requests_total",
                (("route", "/orders"), ("service", "gateway"), ("status", "200")),
            )
        ]
        > 0
    )
    assert any(name == "sdlab_request_duration_seconds_bucket" for name, _ in expected)
    assert read(board) == expected


def test_series_made_after_a_read_are_read_the_next_time(board):
    metrics = ServiceMetrics("cache")
    before = read(board)
    metrics.requests.labels("cache", "/get", "200").inc(3)
    after = read(board)
    key = ("sdlab_requests_total", (("route", "/get"), ("service", "cache"), ("status", "200")))
    assert key not in before
    assert after[key] == 3
    assert after == collected(metrics)


@contextlib.contextmanager
def a_service(work: Callable[[], None]) -> Iterator[None]:
    """Runs `work` in a forked process that then waits, answering nothing, until the
    block ends."""
    ready, done = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            work()
            os.write(ready[1], b"x")
            os.read(done[0], 1)
        finally:
            os._exit(0)
    try:
        assert os.read(ready[0], 1) == b"x"
        yield
    finally:
        os.write(done[1], b"x")
        os.waitpid(pid, 0)


def test_another_process_reads_a_service_without_asking_it():
    boards = ServiceBoards()

    def count() -> None:
        install(boards)
        requests = Counter("sdlab_requests", "", ["service"], registry=CollectorRegistry())
        requests.labels("orders").inc(41)
        requests.labels("orders").inc()

    with a_service(count):
        assert read(boards.metrics) == {("sdlab_requests_total", (("service", "orders"),)): 42.0}
    boards.close()


def test_a_full_board_keeps_counting_privately(board):
    crowd = Gauge("sdlab_crowd", "", ["n"], registry=CollectorRegistry())
    for n in range(SLOTS):
        crowd.labels(str(n)).set(n)
    crowd.labels("one too many").set(7)
    assert crowd.labels("one too many")._value.get() == 7.0  # the service still has it
    shown = read(board)
    assert ("sdlab_crowd", (("n", "one too many"),)) not in shown
    assert shown[("sdlab_crowd", (("n", str(SLOTS - 1)),))] == SLOTS - 1


def test_a_log_board_keeps_the_newest_lines_and_hands_out_those_after_a_seq(monkeypatch):
    board = LogBoard(lines=5)
    monkeypatch.setattr(LogRing, "board", board)
    ring = LogRing("orders", stream=io.StringIO())
    for n in range(8):
        ring.log("info", f"order {n}", order=n)
    assert [line["seq"] for line in board.since(0)] == [4, 5, 6, 7, 8]  # the oldest went
    assert [line["message"] for line in board.since(6)] == ["order 6", "order 7"]
    assert board.since(8) == []
    assert ring.since(7) == board.since(7)
    board.close()


def test_a_line_too_long_for_the_tail_is_cut_and_still_says_whose_it_is(monkeypatch):
    board = LogBoard(lines=4)
    monkeypatch.setattr(LogRing, "board", board)
    stdout = io.StringIO()
    ring = LogRing("gateway", stream=stdout)
    ring.log("error", "x" * 5000, detail="y" * 5000)
    (line,) = board.since(0)
    assert (line["service"], line["seq"], line["level"]) == ("gateway", 1, "error")
    assert line["message"] == "x" * 500
    assert "cut" in line
    assert json.loads(stdout.getvalue())["detail"] == "y" * 5000  # stdout keeps it whole
    board.close()


def test_the_supervisor_reads_a_services_log_tail_off_its_board():
    boards = ServiceBoards()

    def log() -> None:
        install(boards)
        LogRing("cache", stream=io.StringIO()).log("warning", "evicted", keys=3)

    with a_service(log):
        (line,) = boards.logs.since(0)
        assert (line["service"], line["message"], line["keys"]) == ("cache", "evicted", 3)
    boards.close()


def test_a_series_removed_and_made_again_reads_as_the_new_one(board):
    metrics = ServiceMetrics("inventory")
    metrics.latency.labels("inventory", "/stock").observe(0.2)
    metrics.pool_size.labels("inventory", "db").set(8)
    metrics.latency.remove("inventory", "/stock")
    metrics.pool_size.remove("inventory", "db")
    metrics.latency.labels("inventory", "/stock").observe(0.003)
    metrics.pool_size.labels("inventory", "db").set(4)
    assert read(board) == collected(metrics)


def test_a_board_gives_the_same_keys_until_a_series_is_added(board):
    """The supervisor indexes a board's keys once and reuses the index while they stay."""
    metrics = ServiceMetrics("gateway")
    metrics.requests.labels("gateway", "/products", "200").inc()
    keys = board.keys()
    metrics.requests.labels("gateway", "/products", "200").inc(2)
    assert board.keys() is keys  # a value moved: same keys, same object
    assert (
        dict(zip(keys, board.read(), strict=True))[
            (
                "sdlab_requests_total",
                (("route", "/products"), ("service", "gateway"), ("status", "200")),
            )
        ]
        == 3.0
    )
    metrics.requests.labels("gateway", "/orders", "500").inc()
    grown = board.keys()
    assert grown is not keys
    assert len(grown) == len(keys) + 1
    assert len(board.read()) == len(grown)
    fingerprint = ("sdlab_knobs_fingerprint", (("service", "gateway"),))
    metrics.knobs_fingerprint.labels("gateway").set(42)
    assert board.value(fingerprint) == 42.0
    assert board.value(("sdlab_no_such_series", ())) is None


def test_a_service_keeps_its_figures_fresh_only_while_its_supervisor_says_it_is_watched():
    """The supervisor's word reaches the forked service through the board; the service's
    figure loop runs each second while watched, and not in the seconds after it is not."""
    boards = ServiceBoards()
    boards.metrics.watched = True
    passes = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            install(boards)
            service = Service.__new__(Service)  # only its figure loop is needed here

            async def gauges() -> None:
                while True:
                    os.write(passes[1], b".")
                    await service.figures_due()

            with contextlib.suppress(TimeoutError):
                asyncio.run(asyncio.wait_for(gauges(), timeout=20))  # bounded, on its own
        finally:
            os._exit(0)
    os.close(passes[1])
    os.set_blocking(passes[0], False)

    def passes_in(seconds: float) -> int:
        with contextlib.suppress(BlockingIOError):
            os.read(passes[0], 1024)  # what came before
        time.sleep(seconds)  # a window to count in, not a speed
        try:
            return len(os.read(passes[0], 1024))
        except BlockingIOError:
            return 0

    try:
        assert passes_in(3 * GAUGE_PERIOD_S + 0.5) >= 2
        boards.metrics.watched = False
        time.sleep(GAUGE_PERIOD_S + 0.2)  # a pass already under way finishes
        assert passes_in(min(5.0, UNWATCHED_GAUGE_S - 3)) == 0
        boards.metrics.watched = True
        assert passes_in(2 * GAUGE_PERIOD_S + 0.5) >= 1
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(passes[0])
        boards.close()
    assert ServiceBoards().metrics.watched is False  # a new board: nobody said yet
