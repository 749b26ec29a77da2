"""Writes the Grafana dashboards in observability/grafana/dashboards/ from code.

The lab-session dashboard's scenario panels come from each scenario's declared metrics
(`Scenario.metrics` in sandbox/catalog): a scenario added to the catalog gets its row here
without anyone writing a panel for it. Each scenario panel shows data only while that
scenario is switched on in the session's sandbox (`and on() sdlab_scenario_active{...}`).
Every selector of the lab-session dashboard names `organisation` and `session`, so the
lab page's Grafana proxy can confine its queries to one session.

    python -m observability.dashboards          # rewrite the JSON files
    python -m observability.dashboards --check  # exit 1 if they differ from the code

`make test` runs the check (tests/observability/test_dashboards.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sandbox.catalog import SCENARIOS
from sandbox.control import COMMON_METRICS
from sandbox.spec import MetricSpec
from sandbox.topology import HOPS, SERVICES

OUT = Path(__file__).resolve().parent / "grafana" / "dashboards"
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
TEMPO = {"type": "tempo", "uid": "tempo"}
LAB = 'organisation="$organisation",session="$session"'
RATE = "[$__rate_interval]"
# Services that answer other services; the rest (loadgen, worker) only call out.
SERVERS = tuple(s for s in SERVICES if any(callee == s for _, callee in HOPS))


class Board:
    """Panels laid out left to right, top to bottom, on Grafana's 24-column grid."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.row_height = 0

    def next_id(self) -> int:
        return len(self.panels) + 1

    def row(self, title: str) -> None:
        self.y += self.row_height
        self.x = self.row_height = 0
        self.panels.append(
            {
                "id": self.next_id(),
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    def add(
        self,
        title: str,
        targets: list[dict[str, Any]],
        *,
        unit: str = "short",
        width: int = 8,
        height: int = 7,
        kind: str = "timeseries",
        description: str = "",
        datasource: dict[str, str] = PROMETHEUS,
    ) -> None:
        if self.x + width > 24:
            self.y += self.row_height
            self.x = self.row_height = 0
        panel: dict[str, Any] = {
            "id": self.next_id(),
            "type": kind,
            "title": title,
            "description": description,
            "datasource": datasource,
            "gridPos": {"h": height, "w": width, "x": self.x, "y": self.y},
            "targets": [
                {"refId": chr(ord("A") + i), "datasource": datasource, **t}
                for i, t in enumerate(targets)
            ],
        }
        if kind != "logs":
            panel["fieldConfig"] = {"defaults": {"unit": unit}, "overrides": []}
        if kind == "timeseries":
            panel["options"] = {"legend": {"displayMode": "list", "placement": "bottom"}}
        self.panels.append(panel)
        self.x += width
        self.row_height = max(self.row_height, height)


def q(expr: str, legend: str = "") -> dict[str, Any]:
    target: dict[str, Any] = {"expr": expr}
    if legend:
        target["legendFormat"] = legend
    return target


def quantiles(bucket: str, selector: str, by: Iterable[str] = ()) -> list[dict[str, Any]]:
    labels = ", ".join(["le", *by])
    suffix = " ".join("{{%s}}" % label for label in by)  # noqa: UP031 (Grafana's braces)
    matchers = f"{{{selector}}}" if selector else ""
    return [
        q(
            f"histogram_quantile({p}, sum by ({labels}) (rate({bucket}{matchers}{RATE})))",
            f"p{round(p * 100)} {suffix}".strip(),
        )
        for p in (0.5, 0.95, 0.99)
    ]


def dashboard(
    uid: str,
    title: str,
    board: Board,
    *,
    variables: list[dict[str, Any]],
    description: str,
    links: list[dict[str, Any]] | None = None,
    refresh: str = "30s",
    time_from: str = "now-1h",
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["sdlab"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "graphTooltip": 1,
        "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": links or [],
        "panels": board.panels,
    }


def query_variable(name: str, label: str, selector: str, title: str) -> dict[str, Any]:
    query = f"label_values({selector}, {label})"
    return {
        "name": name,
        "label": title,
        "type": "query",
        "datasource": PROMETHEUS,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 1,
        "sort": 1,
        "includeAll": False,
        "multi": False,
        "current": {},
    }


# ------------------------------------------------------------------ the lab session
def service_red(board: Board, service: str) -> None:
    """Rate, errors and duration of one sandbox service."""
    where = f'{LAB},service="{service}"'
    if service in SERVERS:
        total = f"sum(rate(sdlab_requests_total{{{where}}}{RATE}))"
        errors = f'sum(rate(sdlab_requests_total{{{where},status=~"5.."}}{RATE}))'
        rate = q(f"sum by (route) (rate(sdlab_requests_total{{{where}}}{RATE}))", "{{route}}")
        bucket, side = "sdlab_request_duration_seconds_bucket", "requests it serves"
    elif service == "loadgen":
        total = f"sum(rate(sdlab_user_requests_total{{{where}}}{RATE}))"
        errors = f'sum(rate(sdlab_user_requests_total{{{where},outcome!="ok"}}{RATE}))'
        rate = q(
            f"sum by (kind, outcome) (rate(sdlab_user_requests_total{{{where}}}{RATE}))",
            "{{kind}} {{outcome}}",
        )
        bucket, side = "sdlab_user_request_duration_seconds_bucket", "simulated users' requests"
    else:
        total = f"sum(rate(sdlab_client_calls_total{{{where}}}{RATE}))"
        errors = f'sum(rate(sdlab_client_calls_total{{{where},outcome!="ok"}}{RATE}))'
        rate = q(
            f"sum by (dependency) (rate(sdlab_client_calls_total{{{where}}}{RATE}))",
            "{{dependency}}",
        )
        bucket, side = "sdlab_client_duration_seconds_bucket", "calls it makes"
    # 0 when it served requests without errors, nothing when it served none.
    ratio = f"({errors} or 0 * {total}) / {total}"
    board.add(f"{service}: rate", [rate], unit="reqps", description=f"Rate of the {side}.")
    board.add(
        f"{service}: errors",
        [q(ratio, "error ratio")],
        unit="percentunit",
        description=f"Share of the {side} that failed.",
    )
    board.add(
        f"{service}: duration",
        quantiles(bucket, where),
        unit="s",
        description=f"Duration of the {side}.",
    )


def metric_panel(board: Board, scenario: str, metric: MetricSpec) -> None:
    active = f'sdlab_scenario_active{{{LAB},scenario="{scenario}"}}'
    by = [label for label in metric.labels if label != "le"]
    labels = ", ".join(by)
    legend = " ".join("{{%s}}" % label for label in by)  # noqa: UP031 (Grafana's braces)
    if metric.type == "counter":
        exprs = [q(f"sum by ({labels}) (rate({metric.name}{{{LAB}}}{RATE}))", legend)]
        unit = "s" if metric.name.endswith("_seconds_total") else "ops"
        title = f"{metric.name} (per second)"
    elif metric.type == "gauge":
        exprs = [q(f"max by ({labels}) ({metric.name}{{{LAB}}})", legend)]
        unit, title = "short", metric.name
    else:
        exprs = quantiles(f"{metric.name}_bucket", LAB, by)
        unit, title = "s", f"{metric.name} (quantiles)"
    # Data only while the scenario is on in this sandbox.
    for target in exprs:
        target["expr"] = f"{target['expr']} and on() {active}"
    board.add(title, exprs, unit=unit, description=metric.help)


def lab_session() -> dict[str, Any]:
    board = Board()
    # Panel 1 is the one the lab page embeds (d-solo ... panelId=1).
    board.add(
        "What users see: requests by outcome",
        [
            q(
                f"sum by (outcome) (rate(sdlab_user_requests_total{{{LAB}}}{RATE}))",
                "{{outcome}}",
            )
        ],
        unit="reqps",
        width=12,
        description="Simulated users' requests per second, by how they ended.",
    )
    board.add(
        "Scenarios and mitigations switched on",
        [
            q(f"max by (scenario) (sdlab_scenario_active{{{LAB}}})", "scenario {{scenario}}"),
            q(
                f"max by (mitigation) (sdlab_mitigation_active{{{LAB}}})",
                "mitigation {{mitigation}}",
            ),
        ],
        width=6,
    )
    board.add(
        "Time left",
        [q(f"min(sdlab_sandbox_expires_in_seconds{{{LAB}}})")],
        unit="s",
        width=6,
        kind="stat",
        description="Before the sandbox stops itself (the platform ends the lab earlier).",
    )
    board.row("Services: rate, errors, duration")
    for service in SERVICES:
        service_red(board, service)
    board.row("Resources")
    board.add(
        "Memory (PSS)",
        [q(f"max by (service) (sdlab_process_proportional_bytes{{{LAB}}})", "{{service}}")],
        unit="bytes",
        width=12,
    )
    board.add(
        "CPU",
        [
            q(
                f"sum by (service) (rate(sdlab_process_cpu_seconds_total{{{LAB}}}{RATE}))",
                "{{service}}",
            )
        ],
        unit="percentunit",
        width=12,
    )
    for slug in sorted(SCENARIOS):
        scenario = SCENARIOS[slug]
        own = [m for m in scenario.metrics if m.name not in COMMON_METRICS]
        if not own:
            continue
        board.row(f"Scenario: {scenario.title} ({slug})")
        for metric in own:
            metric_panel(board, slug, metric)
    return dashboard(
        "sdlab-lab-session",
        "Lab session",
        board,
        description="One lab's sandbox: the RED figures of every service and the metrics of "
        "every scenario switched on. Generated by observability/dashboards.py.",
        variables=[
            query_variable("organisation", "organisation", 'up{job="sandboxes"}', "Organisation"),
            query_variable(
                "session",
                "session",
                'up{job="sandboxes",organisation="$organisation"}',
                "Session",
            ),
        ],
        links=[
            {
                "title": "This session's logs",
                "type": "link",
                "url": "/explore?left="
                + json.dumps(
                    {
                        "datasource": "loki",
                        "queries": [
                            {"refId": "A", "expr": '{session="${session}"}', "datasource": LOKI}
                        ],
                    },
                    separators=(",", ":"),
                ),
                "targetBlank": True,
            }
        ],
        refresh="5s",
        time_from="now-15m",
    )


# ------------------------------------------------------------------ the platform
def platform() -> dict[str, Any]:
    board = Board()
    responses = "django_http_responses_total_by_status_view_method_total"
    board.row("HTTP")
    board.add(
        "Answers by status",
        [q(f"sum by (status) (rate({responses}{RATE}))", "{{status}}")],
        unit="reqps",
    )
    board.add(
        "Server error ratio (5 min)",
        [q("sdlab:http_error_ratio:rate5m", "5xx")],
        unit="percentunit",
    )
    board.add(
        "Latency",
        quantiles("django_http_requests_latency_seconds_by_view_method_bucket", ""),
        unit="s",
    )
    board.add(
        "Busiest views",
        [
            q(
                "topk(10, sum by (view) (rate("
                f"django_http_requests_total_by_view_transport_method_total{RATE})))",
                "{{view}}",
            )
        ],
        unit="reqps",
        width=12,
    )
    board.add(
        "Server errors by view",
        [q(f'sum by (view) (rate({responses}{{status=~"5.."}}{RATE}))', "{{view}}")],
        unit="reqps",
        width=12,
    )
    board.row("Lab sessions")
    board.add(
        "Sessions by state",
        [q("max by (state) (sdlab_lab_sessions)", "{{state}}")],
        description="Counted from the database at scrape time (every web replica reports it).",
    )
    board.add(
        "Start time: request to running sandbox (15 min)",
        [
            q(
                f"histogram_quantile({p}, sum by (le) "
                "(rate(sdlab_lab_session_start_seconds_bucket[15m])))",
                f"p{round(p * 100)}",
            )
            for p in (0.5, 0.95)
        ],
        unit="s",
    )
    board.add(
        "Sandbox starts by outcome (15 min)",
        [q("sum by (outcome) (increase(sdlab_lab_session_provisions_total[15m]))", "{{outcome}}")],
    )
    board.add(
        "Quota refusals by organisation (1 h)",
        [
            q(
                "sum by (organisation) (increase(sdlab_lab_session_quota_refusals_total[1h]))",
                "{{organisation}}",
            )
        ],
    )
    board.add("Running sandboxes scraped", [q('count(up{job="sandboxes"} == 1)', "sandboxes")])
    board.add(
        "Sessions past their expiry",
        [q("max(sdlab_lab_sessions_overdue)", "overdue")],
        kind="stat",
        description="Should be 0: the beat's sweep ends sessions at their expiry.",
    )
    board.row("Telemetry relay")
    board.add(
        "Frames sent",
        [q(f"sum by (outcome) (rate(sdlab_relay_frames_total{RATE}))", "{{outcome}}")],
        unit="ops",
    )
    board.add(
        "Sandbox reads",
        [q(f"sum by (outcome) (rate(sdlab_relay_reads_total{RATE}))", "{{outcome}}")],
        unit="ops",
    )
    board.add(
        "Lag and tick time",
        [
            q("max(sdlab_relay_lag_seconds)", "lag"),
            q(
                "histogram_quantile(0.95, sum by (le) "
                f"(rate(sdlab_relay_tick_seconds_bucket{RATE})))",
                "tick p95",
            ),
        ],
        unit="s",
    )
    board.row("Celery")
    board.add(
        "Tasks by outcome",
        [
            q(
                f"sum by (task, outcome) (rate(sdlab_celery_tasks_total{RATE}))",
                "{{task}} {{outcome}}",
            )
        ],
        unit="ops",
        width=12,
    )
    board.add(
        "Task run time p95",
        [
            q(
                "histogram_quantile(0.95, sum by (le, task) "
                f"(rate(sdlab_celery_task_seconds_bucket{RATE})))",
                "{{task}}",
            )
        ],
        unit="s",
        width=12,
    )
    board.row("Targets and logs")
    board.add(
        "Up",
        [q('up{job=~"platform|celery|relay|telemetry"}', "{{job}} {{instance}}")],
        kind="stat",
        width=8,
    )
    board.add(
        "Platform errors (logs)",
        [{"expr": '{service_name=~"sdlab-.+"} | json | level=~"ERROR|CRITICAL"'}],
        kind="logs",
        width=16,
        datasource=LOKI,
    )
    return dashboard(
        "sdlab-platform",
        "Platform",
        board,
        description="The control plane: HTTP, lab sessions, the relay and Celery.",
        variables=[],
    )


# ------------------------------------------------------------------ an organisation
def organisation() -> dict[str, Any]:
    board = Board()
    org = 'organisation="$organisation"'
    board.row("Sandboxes")
    board.add(
        "Sessions by state",
        [q(f"max by (state) (sdlab_lab_sessions_by_organisation{{{org}}})", "{{state}}")],
    )
    board.add(
        "Sandboxes in use and quota",
        [
            q(f'count(up{{job="sandboxes",{org}}} == 1)', "running"),
            q(f"max(sdlab_organisation_sandbox_quota{{{org}}})", "quota"),
        ],
    )
    board.add(
        "Starts refused by the quota (1 h)",
        [q(f"sum(increase(sdlab_lab_session_quota_refusals_total{{{org}}}[1h]))", "refused")],
    )
    board.row("Use")
    board.add(
        "Requests in the organisation's sandboxes",
        [q(f"sum by (session) (sdlab:sandbox_requests:rate1m{{{org}}})", "session {{session}}")],
        unit="reqps",
        width=12,
    )
    board.add(
        "Memory of its sandboxes",
        [
            q(
                f"sum by (session) (sdlab_process_proportional_bytes{{{org}}})",
                "session {{session}}",
            )
        ],
        unit="bytes",
        width=12,
    )
    return dashboard(
        "sdlab-organisation",
        "Organisation usage",
        board,
        description="One organisation's labs: sessions, quota, refusals and its sandboxes' use.",
        variables=[
            query_variable(
                "organisation",
                "organisation",
                "sdlab_organisation_sandbox_quota",
                "Organisation",
            )
        ],
        time_from="now-24h",
        refresh="1m",
    )


DASHBOARDS = {
    "lab-session.json": lab_session,
    "platform.json": platform,
    "organisation.json": organisation,
}


def rendered() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    stale = []
    for name, text in rendered().items():
        path = OUT / name
        if path.exists() and path.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        sys.stderr.write(
            f"stale dashboards: {', '.join(stale)}; run python -m observability.dashboards\n"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
