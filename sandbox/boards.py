"""What a service shares with its supervisor in memory: its metric values and log tail.

The supervisor samples every service once a second while someone watches a lab. Asking
each one over HTTP cost a request, a walk of its registry and a JSON body in the service
and seven calls and decodes in the supervisor: about a fifth of a watched sandbox's CPU.
Instead, the supervisor maps one `MetricBoard` per service before it forks it; the
service's prometheus_client metrics keep their values there (`install()` swaps the
library's value class), and the supervisor reads every series with one slice of the
board, without waking the service.

Its log lines go the same way (`LogBoard`): the relay reads a lab's log tail every second,
and asking all eight processes for it over HTTP cost as much again.

Layout of a metric board (all little-endian):

    header  magic u32, slots u32, series u64, key bytes u64, then watched f64
    values  `slots` doubles, one per series, in the order the series were created
    keys    per series: u32 length, then JSON [kind, sample name, label names, values]

A series is announced by writing its key, then raising the count. x86 keeps one writer's
stores in order, so a reader that sees the count sees the key; where stores may be seen
out of order (arm64), a key read half-written does not parse (the key space starts
zeroed) and is taken at the next read. Values are aligned doubles, which a reader never
sees half-written.
"""

from __future__ import annotations

import json
import mmap
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from prometheus_client import values as prometheus_values

MAGIC = 0x4D4C4453  # "SDLM"
HEADER = struct.Struct("<IIQQ")
LENGTH = struct.Struct("<I")
WATCHED = struct.Struct("<d")  # after the header: 1.0 while someone watches the sandbox
SLOTS = 16384  # a busy gateway has a few hundred series
VALUES_AT = 64
KEYS_AT = VALUES_AT + SLOTS * 8
SIZE = KEYS_AT + 1024 * 1024  # pages are only backed once written

Sample = tuple[str, dict[str, str], float]
SampleKey = tuple[str, tuple[tuple[str, str], ...]]


class BoardFull(Exception):
    """No slot or key space left: the series keeps a private value (its /_metrics still
    shows it) that the supervisor cannot read."""


class MetricBoard:
    """One service's values. Made by the supervisor before the fork; the child writes,
    the supervisor reads. A restarted service gets a fresh board, so its counters start
    at zero as a restarted process's do."""

    def __init__(self) -> None:
        self.memory = mmap.mmap(-1, SIZE, flags=mmap.MAP_SHARED)
        HEADER.pack_into(self.memory, 0, MAGIC, SLOTS, 0, 0)
        self.values = memoryview(self.memory)[VALUES_AT:KEYS_AT].cast("d")
        self._lock = threading.Lock()  # writer side: a service's threads create series too
        self._series = 0
        self._key_bytes = 0
        # reader side: the keys parsed so far and how to turn values into samples
        self._known = 0
        self._known_bytes = 0
        self._planned_slots: dict[SampleKey, int] = {}  # plain series, in creation order
        self._plain: list[int] = []
        self._histograms: dict[SampleKey, _Histogram] = {}
        self._keys: tuple[SampleKey, ...] = ()

    @property
    def watched(self) -> bool:
        """Whether someone watches the sandbox (the supervisor says so, the service reads
        it): a loop that only keeps figures fresh need not run every second otherwise."""
        return bool(WATCHED.unpack_from(self.memory, HEADER.size)[0])

    @watched.setter
    def watched(self, watched: bool) -> None:
        WATCHED.pack_into(self.memory, HEADER.size, 1.0 if watched else 0.0)

    # -- writer (the service)
    def allocate(
        self, kind: str, metric: str, name: str, labels: Sequence[str], values: Sequence[str]
    ) -> int:
        key = json.dumps([kind, metric, name, list(labels), list(values)]).encode()
        with self._lock:
            if self._series >= SLOTS or KEYS_AT + self._key_bytes + LENGTH.size + len(key) > SIZE:
                raise BoardFull(f"{name}: no room for another series")
            at = KEYS_AT + self._key_bytes
            LENGTH.pack_into(self.memory, at, len(key))
            self.memory[at + LENGTH.size : at + LENGTH.size + len(key)] = key
            slot = self._series
            self._series += 1
            self._key_bytes += LENGTH.size + len(key)
            HEADER.pack_into(self.memory, 0, MAGIC, SLOTS, self._series, self._key_bytes)
            return slot

    # -- reader (the supervisor)
    def keys(self) -> tuple[SampleKey, ...]:
        """The key (sample name, sorted labels) of every value `read()` gives, in its order:
        the same tuple until a series is added, so a reader can index it once."""
        self._learn()
        return self._keys

    def read(self) -> list[float]:
        """Every series' value, as prometheus_client's collect() gives them (histogram
        buckets cumulative, then _count and _sum), without _created; aligned with the
        `keys()` of the same moment."""
        if not self._known:
            return []
        values = cast(list[float], self.values[: self._known].tolist())
        out = [values[slot] for slot in self._plain]
        for histogram in self._histograms.values():
            histogram.read(values, out)
        return out

    def samples(self) -> list[Sample]:
        """`keys()` and `read()` together, labels as dicts."""
        keys = self.keys()
        return [
            (name, dict(labels), value)
            for (name, labels), value in zip(keys, self.read(), strict=True)
        ]

    def value(self, key: SampleKey) -> float | None:
        """The value of one series (not a histogram's), if it exists."""
        self._learn()
        slot = self._planned_slots.get(key)
        return None if slot is None else float(self.values[slot])

    def _learn(self) -> None:
        _, _, series, _ = HEADER.unpack_from(self.memory, 0)
        if self._known == series:
            return
        at = KEYS_AT + self._known_bytes
        while self._known < series:
            (length,) = LENGTH.unpack_from(self.memory, at)
            try:
                kind, metric, name, labels, values = json.loads(
                    self.memory[at + LENGTH.size : at + LENGTH.size + length]
                )
            except ValueError:
                break  # announced but not yet readable here: the next read takes it
            self._file(kind, metric, name, dict(zip(labels, values, strict=True)), self._known)
            self._known += 1
            at += LENGTH.size + length
            self._known_bytes = at - KEYS_AT
        self._plain = list(self._planned_slots.values())
        keys = list(self._planned_slots)
        for histogram in self._histograms.values():
            keys += histogram.keys()
        self._keys = tuple(keys)

    def _file(self, kind: str, metric: str, name: str, labels: dict[str, str], slot: int) -> None:
        # A series removed and made again gets a new slot under the same key: the newest wins.
        if kind != "histogram":
            self._planned_slots[(name, tuple(sorted(labels.items())))] = slot
            return
        le = labels.pop("le", None)
        group = (metric, tuple(sorted(labels.items())))
        histogram = self._histograms.setdefault(group, _Histogram(metric, labels))
        if le is None:
            histogram.sum_slot = slot
        else:
            kept = [b for b in histogram.buckets if b[1] != le]
            histogram.buckets = sorted([*kept, (float(le), le, slot)])

    def close(self) -> None:
        self.values.release()
        self.memory.close()


class _Histogram:
    __slots__ = ("base", "buckets", "labels", "sum_slot")

    def __init__(self, base: str, labels: dict[str, str]) -> None:
        self.base = base
        self.labels = labels
        self.buckets: list[tuple[float, str, int]] = []
        self.sum_slot: int | None = None

    def keys(self) -> list[SampleKey]:
        labels = sorted(self.labels.items())
        keys: list[SampleKey] = [
            (f"{self.base}_bucket", tuple(sorted([*labels, ("le", le)])))
            for _, le, _ in self.buckets
        ]
        keys.append((f"{self.base}_count", tuple(labels)))
        if self.sum_slot is not None:
            keys.append((f"{self.base}_sum", tuple(labels)))
        return keys

    def read(self, values: Sequence[float], out: list[float]) -> None:
        total = 0.0
        for _, _, slot in self.buckets:
            total += values[slot]
            out.append(total)
        out.append(total)
        if self.sum_slot is not None:
            out.append(values[self.sum_slot])


def value_class(board: MetricBoard) -> type:
    """prometheus_client's value class, keeping each value in `board`."""

    class SharedValue:
        _multiprocess = False

        def __init__(
            self,
            typ: str,
            metric_name: str,
            name: str,
            labelnames: Sequence[str],
            labelvalues: Sequence[str],
            help_text: str,
            **_: Any,
        ) -> None:
            self._value = 0.0
            self._lock = threading.Lock()
            self._exemplar = None
            try:
                self._slot: int | None = board.allocate(
                    typ, metric_name, name, labelnames, labelvalues
                )
            except BoardFull:
                self._slot = None

        def inc(self, amount: float) -> None:
            with self._lock:
                self._value += amount
                if self._slot is not None:
                    board.values[self._slot] = self._value

        def set(self, value: float, timestamp: float | None = None) -> None:
            with self._lock:
                self._value = float(value)
                if self._slot is not None:
                    board.values[self._slot] = self._value

        def set_exemplar(self, exemplar: Any) -> None:
            self._exemplar = exemplar

        def get(self) -> float:
            return self._value

        def get_exemplar(self) -> Any:
            return self._exemplar

    return SharedValue


LOG_LINES = 200  # per service: the log tail shows the newest of all services' lines
LOG_SLOT = 2048
LOG_HEADER = struct.Struct("<QQ")  # lines begun, lines written
LOG_ENTRY = struct.Struct("<QI")  # the line's seq, its length
TOO_LONG = b'{"seq": %d, "time": %f, "level": "warning", "message": "(too long for the tail)"}'


class LogBoard:
    """The newest `LOG_LINES` lines a service logged, in a ring of fixed slots. A reader
    drops a slot the writer began to overwrite while it was reading."""

    def __init__(self, lines: int = LOG_LINES) -> None:
        self.lines = lines
        self.memory = mmap.mmap(-1, LOG_HEADER.size + lines * LOG_SLOT, flags=mmap.MAP_SHARED)
        self._lock = threading.Lock()

    def _slot(self, index: int) -> int:
        return LOG_HEADER.size + (index % self.lines) * LOG_SLOT

    def write(self, seq: int, line: bytes, at: float = 0.0) -> None:
        if LOG_ENTRY.size + len(line) > LOG_SLOT:
            line = TOO_LONG % (seq, at)
        with self._lock:
            _, written = LOG_HEADER.unpack_from(self.memory, 0)
            LOG_HEADER.pack_into(self.memory, 0, written + 1, written)
            slot = self._slot(written)
            LOG_ENTRY.pack_into(self.memory, slot, seq, len(line))
            start = slot + LOG_ENTRY.size
            self.memory[start : start + len(line)] = line
            LOG_HEADER.pack_into(self.memory, 0, written + 1, written + 1)

    def since(self, seq: float) -> list[dict[str, Any]]:
        """The kept lines whose seq is above `seq`, oldest first."""
        _, written = LOG_HEADER.unpack_from(self.memory, 0)
        out = []
        for index in range(max(0, written - self.lines), written):
            slot = self._slot(index)
            kept, length = LOG_ENTRY.unpack_from(self.memory, slot)
            if kept <= seq:
                continue
            raw = self.memory[slot + LOG_ENTRY.size : slot + LOG_ENTRY.size + length]
            begun, _ = LOG_HEADER.unpack_from(self.memory, 0)
            if begun > index + self.lines:  # overwritten while it was read
                continue
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
        return out

    def close(self) -> None:
        self.memory.close()


@dataclass
class ServiceBoards:
    """A service's boards: made by the supervisor before it forks the service, and fresh
    for each restart (a new process starts with zeroed counters and an empty log)."""

    metrics: MetricBoard = field(default_factory=MetricBoard)
    logs: LogBoard = field(default_factory=LogBoard)

    def close(self) -> None:
        self.metrics.close()
        self.logs.close()


def install(boards: ServiceBoards) -> None:
    """From now on, every metric value this process creates, and every line it logs
    through a `LogRing`, lives on `boards`."""
    from sandbox.telemetry import LogRing

    global _installed
    prometheus_values.ValueClass = value_class(boards.metrics)
    LogRing.board = boards.logs
    _installed = boards.metrics


_installed: MetricBoard | None = None


def watched() -> bool:
    """Whether this service's sandbox is watched; True where no supervisor says (a service
    run on its own), so figures stay fresh by default."""
    return _installed is None or _installed.watched
