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
