"""Catalog figures: per scenario, the seconds from enabling it to its signature being
visible in the sandbox's figures.

    .venv/bin/python benchmarks/catalog.py [--runs 3] [--at-once 1] [scenario ...]

Each run starts a fresh sandbox (local backend), puts the scenario's own load on it, waits
out the warm-up, enables the scenario and polls the figures once a second until the
signature holds (or its stated time passes); the median of the runs is printed per
scenario. The figures are windows of a few seconds, so a signature cannot show much faster
than one window: that is the floor of these numbers. `--at-once N` runs N scenarios side
by side (as the tests do): the catalog is measured N times faster, on a busier machine.

Target (the catalog issue): under 10 s for every scenario.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.backends.base import SandboxSpec
from sandbox.backends.local import LocalBackend
from sandbox.catalog import SCENARIOS
from sandbox.client import SandboxClient
from tests.sandbox.signatures import run_scenario

TARGET_S = 10.0
BACKEND_LOCK = threading.Lock()  # the backend's fork server serves one start or stop at a time


def time_to_signature(backend: LocalBackend, slug: str, run: int) -> float | None:
    """Seconds from enable to signature in a fresh sandbox; None when it never showed."""
    with BACKEND_LOCK:
        handle = backend.start(SandboxSpec(session_id=f"bench-cat-{slug[:24]}-{run}"))
    try:
        scenario = SCENARIOS[slug]
        if "cpu-limit" in scenario.extra_requirements and not handle.details[
            "limits_via"
        ].startswith("cgroup"):
            return None
        _, seen = run_scenario(SandboxClient(handle.address, timeout=10), scenario)
        return seen.after_s if seen.held else None
    finally:
        with BACKEND_LOCK:
            backend.stop(handle)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (default 3)")
    parser.add_argument(
        "--at-once", type=int, default=1, help="scenarios measured side by side (default 1)"
    )
    parser.add_argument("scenarios", nargs="*", help="slugs (default: the whole catalog)")
    args = parser.parse_args()
    slugs = args.scenarios or sorted(SCENARIOS)
    unknown = sorted(set(slugs) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")

    root = Path(tempfile.mkdtemp(prefix="sdlb-", dir="/tmp"))
    backend = LocalBackend(root=root)
    print(
        f"enable -> signature visible, median of {args.runs} runs, {args.at_once} at once "
        f"(target < {TARGET_S:g} s)"
    )
    print(f"{'scenario':<28} {'category':<15} {'median s':>9} {'runs':>24}  target")
    over = 0

    def measure(slug: str) -> list[float | None]:
        return [time_to_signature(backend, slug, n) for n in range(args.runs)]

    try:
        with ThreadPoolExecutor(max_workers=max(1, args.at_once)) as pool:
            for slug, runs in zip(slugs, pool.map(measure, slugs), strict=True):
                seen = [r for r in runs if r is not None]
                median = statistics.median(seen) if len(seen) == len(runs) else None
                shown = " ".join("-" if r is None else f"{r:.1f}" for r in runs)
                verdict = "met" if median is not None and median < TARGET_S else "MISSED"
                over += verdict != "met"
                figure = f"{median:.1f}" if median is not None else "never"
                category = SCENARIOS[slug].category
                print(f"{slug:<28} {category:<15} {figure:>9} {shown:>24}  {verdict}", flush=True)
    finally:
        for handle in backend.list():
            backend.stop(handle)
        backend.close()
        shutil.rmtree(root, ignore_errors=True)
    print(f"{len(slugs) - over} of {len(slugs)} scenarios under {TARGET_S:g} s")


if __name__ == "__main__":
    main()
