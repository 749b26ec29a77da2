"""The sandbox without the platform.

    python -m sandbox list-scenarios
    python -m sandbox run --scenario retry-storm [--load-rps 20] [--duration 60]

`run` starts a local sandbox (isolated where the machine allows), shows its key figures
live, and takes commands on the keyboard:  s <slug> / x <slug>  enable / disable a
scenario,  m <slug> / u <slug>  mitigation on / off,  l <rps>  load,  q  quit.
Ctrl-C stops it and removes everything it started.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import time
from typing import Any

from sandbox.backends.base import SandboxSpec, SandboxStartError
from sandbox.catalog import MITIGATIONS, SCENARIOS
from sandbox.client import SandboxClient, SandboxError

FIGURES = (
    ("users.rps", "users/s"),
    ("users.success_ratio", "ok"),
    ("users.p50_ms", "p50 ms"),
    ("users.p99_ms", "p99 ms"),
    ("gateway.rps", "gw/s"),
    ("inventory.rps", "inv/s"),
    ("inventory.p99_ms", "inv p99"),
    ("cache.hit_ratio", "hit"),
    ("queue.depth", "queue"),
    ("sandbox.memory_mb", "MiB"),
)


def list_scenarios(as_json: bool) -> int:
    if as_json:
        print(json.dumps([s.describe() for s in SCENARIOS.values()], indent=2))
        return 0
    width = max(len(slug) for slug in SCENARIOS)
    for scenario in sorted(SCENARIOS.values(), key=lambda s: (s.category, s.slug)):
        answers = ", ".join(m.mitigation for m in scenario.mitigations)
        print(
            f"{scenario.slug:<{width}}  [{scenario.category}] {scenario.title}. "
            f"Answered by: {answers}"
        )
    print(f"\nmitigations: {', '.join(sorted(MITIGATIONS))}")
    return 0


def number(value: float) -> str:
    """Three significant digits, never in exponent form: 3750, 81.1, 0.953, 0."""
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) >= 0.001 else f"{value:.1e}"


def render(figures: dict[str, Any], state: dict[str, Any]) -> str:
    cells = []
    for key, label in FIGURES:
        value = figures.get(key)
        cells.append(f"{label} {'-' if value is None else number(value)}")
    active = ", ".join(state.get("scenarios", {})) or "none"
    mitigations = ", ".join(state.get("mitigations", {})) or "none"
    return f"{' | '.join(cells)}\n  scenarios: {active}   mitigations: {mitigations}"


def command(client: SandboxClient, line: str) -> str:
    verb, _, rest = line.strip().partition(" ")
    rest = rest.strip()
    try:
        if verb == "s" and rest:
            slug, _, raw = rest.partition(" ")
            return json.dumps(client.scenario_enable(slug, json.loads(raw) if raw else {}))
        if verb == "x" and rest:
            return json.dumps(client.scenario_disable(rest))
        if verb == "m" and rest:
            return json.dumps(client.mitigation_enable(rest))
        if verb == "u" and rest:
            return json.dumps(client.mitigation_disable(rest))
        if verb == "l" and rest:
            return json.dumps(client.load(rate_rps=float(rest)))
    except SandboxError as exc:
        return f"refused: {exc.message}"
    except ValueError as exc:
        return f"not understood: {exc}"
    return "commands: s <slug> [json] | x <slug> | m <slug> | u <slug> | l <rps> | q"


def run(args: argparse.Namespace) -> int:
    from sandbox.backends.local import LocalBackend

    for slug in args.scenario:
        if slug not in SCENARIOS:
            print(
                f"unknown scenario {slug!r}; see `python -m sandbox list-scenarios`",
                file=sys.stderr,
            )
            return 2
    backend = LocalBackend()
    spec = SandboxSpec(
        session_id=f"cli-{int(time.time()) % 100000}",
        scenarios=tuple((slug, {}) for slug in args.scenario),
        ttl_seconds=int(max(60, args.duration or 3600)),
        load_rps=args.load_rps,
    )
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        handle = backend.start(spec)
    except SandboxStartError as exc:
        print(f"the sandbox did not start: {exc.reason}\n{exc.log_tail}", file=sys.stderr)
        return 1
    client = SandboxClient(handle.address)
    print(
        f"sandbox {handle.sandbox_id} running ({handle.details['limits_via']}); "
        f"control: {handle.address}"
    )
    print("commands: s <slug> | x <slug> | m <slug> | u <slug> | l <rps> | q   (Ctrl-C stops)")
    started = time.monotonic()
    try:
        while not stopping and (not args.duration or time.monotonic() - started < args.duration):
            ready, _, _ = (
                select.select([sys.stdin], [], [], 1.0) if sys.stdin.isatty() else ([], [], [])
            )
            if not sys.stdin.isatty():
                time.sleep(1.0)
            if ready:
                line = sys.stdin.readline()
                if line.strip() == "q" or not line:
                    break
                print(command(client, line), flush=True)
            try:
                state = client.state()
            except OSError:
                print("the sandbox stopped answering", file=sys.stderr)
                return 1
            print(render(state.get("figures", {}), state), flush=True)
    finally:
        backend.stop(handle)
        backend.close()
        print("sandbox stopped and removed", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list-scenarios", help="the scenario catalog")
    listing.add_argument("--json", action="store_true")
    running = commands.add_parser("run", help="run a sandbox here and watch it")
    running.add_argument(
        "--scenario", action="append", default=[], help="enable at start; repeatable"
    )
    running.add_argument("--load-rps", type=float, default=10.0)
    running.add_argument(
        "--duration", type=float, default=0, help="seconds, then stop (0: until Ctrl-C)"
    )
    args = parser.parse_args(argv)
    if args.command == "list-scenarios":
        return list_scenarios(args.json)
    return run(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # its reader stopped reading (`| head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
