"""The Grafana dashboards: written by observability/dashboards.py (the committed JSON is
what the code writes), the lab session's scenario panels generated from the catalog's
declared metrics, every lab-session query confined to one session as the lab page's
Grafana proxy requires, and every datasource a panel names provisioned."""

import json
import re
from pathlib import Path

import pytest
import yaml

from apps.scenarios.grafana import NotConfined, expression_confined
from observability import dashboards
from sandbox.catalog import SCENARIOS
from sandbox.control import COMMON_METRICS
from sandbox.topology import SERVICES

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "observability" / "grafana"
BOARDS = {p.name: json.loads(p.read_text()) for p in (GRAFANA / "dashboards").glob("*.json")}
VARIABLE = re.compile(r"\$\{?(\w+)")
BUILTIN = {"__rate_interval", "__interval", "__range", "__tags", "__value"}


def panels(board: dict) -> list[dict]:
    return [p for p in board["panels"] if p["type"] != "row"]


def test_the_committed_dashboards_are_what_the_code_writes():
    assert dashboards.main(["--check"]) == 0, "run: python -m observability.dashboards"
    assert set(BOARDS) == set(dashboards.DASHBOARDS)


def test_every_scenario_metric_has_its_panel_shown_only_while_the_scenario_is_on():
    lab = BOARDS["lab-session.json"]
    rows = {p["title"]: p for p in lab["panels"] if p["type"] == "row"}
    for slug, scenario in SCENARIOS.items():
        own = [m.name for m in scenario.metrics if m.name not in COMMON_METRICS]
        row_title = f"Scenario: {scenario.title} ({slug})"
        if not own:
            assert row_title not in rows
            continue
        assert row_title in rows, f"{slug} has no row"
        start = lab["panels"].index(rows[row_title]) + 1
        following = []
        for panel in lab["panels"][start:]:
            if panel["type"] == "row":
                break
            following.append(panel)
        assert [p["title"].split(" ")[0] for p in following] == own
        lab_matchers = 'organisation="$organisation",session="$session"'
        gate = f'sdlab_scenario_active{{{lab_matchers},scenario="{slug}"}}'
        for panel in following:
            for target in panel["targets"]:
                assert target["expr"].endswith(f"and on() {gate}"), target["expr"]


def test_every_service_has_rate_errors_and_duration():
    titles = {p["title"] for p in panels(BOARDS["lab-session.json"])}
    for service in SERVICES:
        assert {f"{service}: rate", f"{service}: errors", f"{service}: duration"} <= titles


@pytest.mark.parametrize("session", [7, 1234])
def test_every_lab_session_query_is_confined_to_one_session(session):
    """The lab page embeds these panels through a proxy that refuses any query reaching
    beyond the viewer's session: a panel that fails this check would show nothing."""
    lab = BOARDS["lab-session.json"]
    for panel in panels(lab):
        for target in panel["targets"]:
            expr = (
                target["expr"]
                .replace("$session", str(session))
                .replace("$organisation", "acme")
                .replace("$__rate_interval", "1m")
            )
            expression_confined(expr, session, "acme")
            with pytest.raises(NotConfined):
                expression_confined(expr, session + 1, "acme")
            with pytest.raises(NotConfined):
                expression_confined(expr, session, "other")
            assert 'organisation="acme"' in expr, "session ids repeat across organisations"


def test_the_embedded_panel_is_the_first():
    first = BOARDS["lab-session.json"]["panels"][0]
    assert first["id"] == 1
    assert first["type"] == "timeseries"


def test_datasources_exist_and_link_metrics_traces_and_logs():
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "datasources.yml").read_text()
    )["datasources"]
    by_uid = {d["uid"]: d for d in provisioned}
    assert {by_uid[u]["type"] for u in ("prometheus", "loki", "tempo")} == {
        "prometheus",
        "loki",
        "tempo",
    }
    prometheus, loki, tempo = by_uid["prometheus"], by_uid["loki"], by_uid["tempo"]
    assert prometheus["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"] == "tempo"
    assert {f["datasourceUid"] for f in loki["jsonData"]["derivedFields"]} == {"tempo"}
    assert tempo["jsonData"]["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert tempo["jsonData"]["tracesToMetrics"]["datasourceUid"] == "prometheus"
    for name, board in BOARDS.items():
        for panel in panels(board):
            uids = {panel["datasource"]["uid"]} | {t["datasource"]["uid"] for t in panel["targets"]}
            assert uids <= set(by_uid), (name, panel["title"])
        for variable in board["templating"]["list"]:
            assert variable["datasource"]["uid"] in by_uid


def test_dashboards_are_well_formed():
    uids = [board["uid"] for board in BOARDS.values()]
    assert len(set(uids)) == len(uids)
    for name, board in BOARDS.items():
        ids = [p["id"] for p in board["panels"]]
        assert len(set(ids)) == len(ids), name
        declared = {v["name"] for v in board["templating"]["list"]}
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0, (name, panel["title"])
            assert grid["x"] + grid["w"] <= 24, (name, panel["title"])
            for target in panel.get("targets", []):
                used = set(VARIABLE.findall(target["expr"])) - BUILTIN
                assert used <= declared, (name, panel["title"], used - declared)
        # no two panels overlap on the grid
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            g = panel["gridPos"]
            area = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not cells & area, (name, panel["title"])
            cells |= area


def test_provisioning_reads_the_dashboards_where_compose_mounts_them():
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "dashboards.yml").read_text()
    )["providers"][0]
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert any(
        m.startswith("../observability/grafana/dashboards:")
        and m.split(":")[1] == provider["options"]["path"]
        for m in mounts
    ), mounts
