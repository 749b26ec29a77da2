"""Every PromQL expression we ship runs against a real Prometheus (Debian's package) that
scrapes make-dev-style processes on loopback: uvicorn, a Celery worker, the relay, and a
running sandbox with an active scenario, found through the platform's discovery and
scraped through its proxy, with the shipped scrape configuration and rules.

- every expression of every dashboard and rule is accepted and evaluates without error;
- every rule group evaluates healthy;
- the lab-session dashboard's panels return data for the session: the first panel, the
  RED panels of every service and the panels of the scenario switched on; those of the
  scenarios that are off return nothing;
- the platform's own metrics arrive: sessions by state, sandbox starts, Celery task
  outcomes, relay frames.
"""

import json
import secrets
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from django_tenants.utils import tenant_context

from apps.scenarios.models import LabSession
from apps.scenarios.services import lab_session_start, lab_session_stop
from config.localservices import free_port
from sandbox.catalog import SCENARIOS
from tests.conftest import make_member
from tests.support.servers import ROOT, asgi_server, celery_worker, process_env, stop, wait_for

pytestmark = pytest.mark.xdist_group("lab-sessions")
PROMETHEUS = shutil.which("prometheus")
OBSERVABILITY = ROOT / "observability"
BOARDS = {
    p.stem: json.loads(p.read_text()) for p in (OBSERVABILITY / "grafana/dashboards").glob("*.json")
}
RULE_FILES = sorted((OBSERVABILITY / "prometheus/rules").glob("*.yml"))
SCENARIO = "slow-db-query"  # one whose load reaches every service of the shop


class Prometheus:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}/api/v1"

    def get(self, path: str, **params: str) -> dict[str, Any]:
        url = f"{self.base}/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:  # a refused query answers 400 with the reason
            return json.loads(exc.read())

    def query(self, expr: str) -> dict[str, Any]:
        return self.get("query", query=expr)

    def ready(self) -> bool:
        try:
            ready = self.base.replace("/api/v1", "/-/ready")
            with urllib.request.urlopen(ready, timeout=2):  # noqa: S310 (loopback)
                return True
        except OSError:
            return False


def scrape_config(tmp_path: Path, *, web: int, worker: int, relay: int, token: str) -> Path:
    """The shipped configuration, pointed at this machine's processes: targets and the
    token file change, and the intervals shrink; jobs, discovery, relabelling and
    honor_labels stay as shipped."""
    config = yaml.safe_load((OBSERVABILITY / "prometheus/prometheus.yml").read_text())
    credentials = tmp_path / "metrics-token"
    credentials.write_text(token)
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(path) for path in RULE_FILES]
    ports = {"platform": web, "celery": worker, "relay": relay}
    jobs = []
    for job in config["scrape_configs"]:
        name = job["job_name"]
        if name == "telemetry":
            continue  # Loki, Tempo and the collector do not run here
        job["scrape_interval"], job["scrape_timeout"] = "1s", "1s"
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(credentials)
        if name in ports:
            job["static_configs"][0]["targets"] = [f"127.0.0.1:{ports[name]}"]
        for sd in job.get("http_sd_configs", []):
            sd["url"] = f"http://127.0.0.1:{web}/internal/prometheus/targets"
            sd["refresh_interval"] = "1s"
            sd["authorization"]["credentials_file"] = str(credentials)
        jobs.append(job)
    config["scrape_configs"] = jobs
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def panel_queries(board: dict, values: dict[str, str]) -> list[tuple[dict, str]]:
    """(panel, expression) for every Prometheus target, the variables filled in."""
    found = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            if target["datasource"]["type"] != "prometheus":
                continue
            expr = target["expr"]
            for name, value in values.items():
                expr = expr.replace(f"${name}", value)
            found.append((panel, expr))
    return found


def rule_expressions() -> list[str]:
    return [
        rule["expr"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


@pytest.mark.skipif(
    PROMETHEUS is None,
    reason="Prometheus is not installed (make install installs Debian's package where "
    "apt-get may run)",
)
@pytest.mark.worker
def test_every_shipped_expression_runs_and_the_lab_panels_have_data(
    committed_organisations, sandbox_root, tmp_path
):
    organisation = committed_organisations("Observed")
    learner = make_member(organisation)
    token = secrets.token_urlsafe(24)
    worker_port, relay_port, prometheus_port = free_port(), free_port(), free_port()
    with (
        celery_worker(SANDBOX_ROOT=str(sandbox_root), CELERY_METRICS_PORT=str(worker_port)),
        asgi_server(METRICS_TOKEN=token) as web,
    ):
        relay = subprocess.Popen(
            [sys.executable, "manage.py", "lab_relay", "--metrics-port", str(relay_port)],
            cwd=ROOT,
            env=process_env(),
        )
        config = scrape_config(tmp_path, web=web, worker=worker_port, relay=relay_port, token=token)
        prometheus = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        session = None
        try:
            with tenant_context(organisation):
                session = lab_session_start(
                    organisation=organisation,
                    learner=learner,
                    scenario_set="observed",
                    scenarios=[[SCENARIO, {}]],
                )

            def running() -> bool:
                with tenant_context(organisation):
                    return LabSession.objects.get(pk=session.pk).state == "running"

            wait_for(running, "the lab to run", 90)
            api = Prometheus(prometheus_port)
            wait_for(api.ready, "Prometheus to be ready", 60)
            values = {
                "organisation": organisation.slug,
                "session": str(session.pk),
                "__rate_interval": "5s",
            }
            check_lab_panels(api, values)
            check_platform_metrics(api, organisation.slug)
            check_every_expression_runs(api, values)
            check_rules_are_healthy(api)
        finally:
            stop(prometheus)
            stop(relay)
            if session is not None:
                with tenant_context(organisation):
                    lab_session_stop(session_id=session.pk)


def has_data(api: Prometheus, expr: str) -> bool:
    answer = api.query(expr)
    assert answer["status"] == "success", (expr, answer)
    return bool(answer["data"]["result"])


def check_lab_panels(api: Prometheus, values: dict[str, str]) -> None:
    lab = BOARDS["lab-session"]
    queries = panel_queries(lab, values)
    rows = [p for p in lab["panels"] if p["type"] == "row"]
    first_scenario_row = next(p for p in rows if p["title"].startswith("Scenario:"))
    ours = next(p for p in rows if p["title"].endswith(f"({SCENARIO})"))
    position = {id(p): i for i, p in enumerate(lab["panels"])}

    def section(panel: dict) -> str:
        at = position[id(panel)]
        if at < position[id(first_scenario_row)]:
            return "session"
        owner = max((r for r in rows if position[id(r)] < at), key=lambda r: position[id(r)])
        return "ours" if owner is ours else "other scenario"

    expected: dict[int, tuple[str, list[str]]] = {}
    for panel, expr in queries:
        if section(panel) in ("session", "ours"):
            expected.setdefault(panel["id"], (panel["title"], []))[1].append(expr)
    assert any(section(p) == "ours" for p, _ in queries), "the scenario has no panel"

    def missing() -> list[str]:
        """Panels none of whose queries has data yet."""
        return [
            f"{title}: {exprs}"
            for title, exprs in expected.values()
            if not any(has_data(api, e) for e in exprs)
        ]

    try:
        wait_for(lambda: not missing(), "every panel of the session to have data", 120)
    except TimeoutError:
        pytest.fail("panels without data:\n" + "\n".join(missing()))
    # switched-off scenarios show nothing, though some of their series exist
    others = [(p, e) for p, e in queries if section(p) == "other scenario"]
    assert others
    assert [p["title"] for p, e in others if has_data(api, e)] == []
    assert {s for s in SCENARIOS if s != SCENARIO}  # there are others to be off


def check_platform_metrics(api: Prometheus, slug: str) -> None:
    def value(expr: str) -> float:
        answer = api.query(expr)["data"]["result"]
        return float(answer[0]["value"][1]) if answer else 0.0

    wanted = {
        # counted from the database at scrape time, through the token-protected /metrics
        f'max(sdlab_lab_sessions_by_organisation{{organisation="{slug}",state="running"}})': 1,
        # observed in the worker, served on its metrics port
        'sum(sdlab_lab_session_provisions_total{outcome="running"})': 1,
        "sum(sdlab_lab_session_start_seconds_count)": 1,
        'sum(sdlab_celery_tasks_total{task="apps.scenarios.tasks.lab_session_provision_task",'
        'outcome="success"})': 1,
        # the relay's frames for the lab page
        'sum(sdlab_relay_frames_total{outcome="sent"})': 1,
        # the sandbox itself, labelled by the control plane's discovery
        f'count(up{{job="sandboxes",organisation="{slug}"}} == 1)': 1,
    }
    try:
        wait_for(
            lambda: all(value(e) >= n for e, n in wanted.items()),
            "the platform's metrics in Prometheus",
            60,
        )
    except TimeoutError:
        pytest.fail(f"short of data: { {e: value(e) for e in wanted} }")
    up = api.query('up{job=~"platform|celery|relay"}')["data"]["result"]
    assert {r["metric"]["job"]: r["value"][1] for r in up} == {
        "platform": "1",
        "celery": "1",
        "relay": "1",
    }


def check_every_expression_runs(api: Prometheus, values: dict[str, str]) -> None:
    expressions = [e for board in BOARDS.values() for _, e in panel_queries(board, values)]
    expressions += rule_expressions()
    assert len(expressions) > 100
    refused = {}
    for expr in expressions:
        answer = api.query(expr)
        if answer["status"] != "success":
            refused[expr] = answer.get("error")
    assert refused == {}
    # the dashboards' variables list what they should
    for board in BOARDS.values():
        for variable in board["templating"]["list"]:
            definition = variable["definition"]
            selector = definition[len("label_values(") : definition.rindex(",")]
            for name, value in values.items():
                selector = selector.replace(f"${name}", value)
            label = definition[definition.rindex(",") + 1 : -1].strip()
            series = api.get("series", **{"match[]": selector})
            assert series["status"] == "success", (definition, series)
            if board["uid"] == "sdlab-lab-session":
                assert values[label] in {s.get(label) for s in series["data"]}, definition


def check_rules_are_healthy(api: Prometheus) -> None:
    def evaluated() -> list[dict]:
        """Every rule, once each has been evaluated (health is "unknown" before)."""
        groups = api.get("rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if all(rule["health"] != "unknown" for rule in rules) else []

    rules = wait_for(evaluated, "every rule to be evaluated", 30)
    assert len(rules) == len(rule_expressions())
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
