"""The key figures of real sandboxes, as the code before the series index computed them.

`figures_pairs.json.gz` holds two pairs of snapshots, 2 s apart, of a sandbox at 20 users/s:
one with intermittent-5xx, instance-crash-loop and retry-storm (and the circuit breaker),
one with deadlock, gc-pause, stale-read, queue-backlog and clock-skew (and the L1 cache).
Each pair carries the figures `figures_compute` gave for it when every figure scanned every
series (commit 901b4ce); the index must not change one of them.
"""

import gzip
import json
import math
from pathlib import Path

import pytest

from sandbox.figures import figures_compute, snapshot_from
from sandbox.topology import SERVICES

PAIRS = json.loads(gzip.decompress((Path(__file__).parent / "figures_pairs.json.gz").read_bytes()))


@pytest.mark.parametrize("pair", PAIRS, ids=lambda pair: "+".join(pair["scenarios"]))
def test_figures_of_recorded_snapshots_are_unchanged(pair):
    old = snapshot_from(pair["old"]["samples"], pair["old"]["at"])
    new = snapshot_from(pair["new"]["samples"], pair["new"]["at"])
    figures = figures_compute(old, new, SERVICES)
    computed = {k: None if math.isnan(v) else v for k, v in figures.items()}
    assert computed == pair["figures"]


def test_snapshots_of_different_layouts_move_by_key():
    """A series added between two samples moved by its whole value; one a restart reset
    moved by its new value; the others by their difference, wherever they sit."""
    from sandbox.figures import moved_between

    old = snapshot_from(
        [("a_total", {"service": "gateway"}, 10.0), ("b_total", {"service": "cache"}, 50.0)],
        0.0,
    )
    new = snapshot_from(
        [
            ("c_total", {"service": "orders"}, 4.0),
            ("b_total", {"service": "cache"}, 7.0),
            ("a_total", {"service": "gateway"}, 15.0),
        ],
        1.0,
    )
    moved = moved_between(old, new)
    assert dict(moved.items()) == {
        ("c_total", (("service", "orders"),)): 4.0,
        ("b_total", (("service", "cache"),)): 7.0,
        ("a_total", (("service", "gateway"),)): 5.0,
    }


def test_a_key_given_twice_counts_once_with_its_later_value():
    from sandbox.figures import Layout, Snapshot, _sum

    key = ("sdlab_requests_total", (("service", "gateway"), ("status", "200")))
    snapshot = Snapshot(0.0, Layout([key, key]), [3.0, 5.0])
    assert _sum(snapshot, "sdlab_requests_total", service="gateway") == 5.0
    assert snapshot.value(key) == 5.0
