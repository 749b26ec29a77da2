"""The lab page's Grafana proxy against a stand-in Grafana on loopback (Grafana itself
cannot be installed here): the session is forced into panel URLs, data queries must be
confined to the session, everything else is refused, and only the lab's viewers pass."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django_tenants.utils import tenant_context

from apps.accounts.models import Role
from apps.scenarios.grafana import NotConfined, expression_confined, query_confined
from apps.scenarios.services import lab_session_start


class StandIn(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, bytes]] = []

    def do_GET(self) -> None:
        self.answer(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.answer(self.rfile.read(length))

    def answer(self, body: bytes) -> None:
        StandIn.seen.append((self.command, self.path, body))
        payload = json.dumps({"grafana": "stand-in", "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def grafana(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    StandIn.seen = []
    settings.GRAFANA_URL = f"http://127.0.0.1:{server.server_address[1]}"
    settings.GRAFANA_TOKEN = "viewer-token"
    try:
        yield StandIn.seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def lab(org_a, member_factory):
    learner = member_factory(org_a, Role.LEARNER)
    with tenant_context(org_a):
        session = lab_session_start(organisation=org_a, learner=learner, scenario_set="x")
    return session, learner


def query(expr: str) -> str:
    return json.dumps({"queries": [{"refId": "A", "expr": expr}]})


def test_panels_get_this_session_forced_and_queries_must_stay_in_it(
    grafana, lab, org_a, site_client
):
    session, learner = lab
    client = site_client(org_a, learner)
    base = f"/labs/{session.pk}/grafana"
    page = client.get(f"{base}/d-solo/sdlab-lab-session/x?panelId=2&var-session=999")
    assert page.status_code == 200
    method, path, _ = grafana[-1]
    assert method == "GET"
    assert f"var-session={session.pk}" in path
    assert "var-session=999" not in path
    assert f"var-organisation={org_a.slug}" in path

    mine = (
        f'sum(rate(sdlab_requests_total{{session="{session.pk}", organisation="{org_a.slug}"}}'
        "[1m]))"
    )
    allowed = client.post(f"{base}/api/ds/query", query(mine), content_type="application/json")
    assert allowed.status_code == 200
    assert grafana[-1][2] == query(mine).encode()

    before = len(grafana)
    for expr in (
        "sum(rate(sdlab_requests_total[1m]))",
        'sum(rate(sdlab_requests_total{session="999"}[1m]))',
        f'sdlab_requests_total{{session=~"{session.pk}|999"}}',
        f'sdlab_requests_total{{session="{session.pk}"}} or sdlab_requests_total{{session="7"}}',
        f'sum(rate(sdlab_requests_total{{session="{session.pk}"}}[1m]))',
        f'sdlab_requests_total{{session="{session.pk}", organisation="not-{org_a.slug}"}}',
    ):
        refused = client.post(f"{base}/api/ds/query", query(expr), content_type="application/json")
        assert refused.status_code == 403, expr
    assert client.get(f"{base}/api/datasources").status_code == 403
    assert client.get(f"{base}/api/admin/users").status_code == 403
    assert len(grafana) == before  # nothing refused reached Grafana


def test_only_the_labs_viewers_get_through(grafana, lab, org_a, org_b, member_factory, site_client):
    session, _ = lab
    path = f"/labs/{session.pk}/grafana/d-solo/sdlab-lab-session/x?panelId=1"
    classmate = site_client(org_a, member_factory(org_a, Role.LEARNER))
    assert classmate.get(path).status_code == 403
    instructor = site_client(org_a, member_factory(org_a, Role.INSTRUCTOR))
    assert instructor.get(path).status_code == 200
    stranger = site_client(org_a, member_factory(org_b, Role.OWNER))
    assert stranger.get(path).status_code == 404
    assert len(grafana) == 1


@pytest.mark.parametrize("body", [b"", b"not json", b'{"queries": []}', b'{"queries": [{}]}'])
def test_malformed_queries_are_not_confined(body):
    with pytest.raises(NotConfined):
        query_confined(body, 1, "acme")


@pytest.mark.parametrize(
    "expr",
    [
        'sum by (service) (rate(sdlab_requests_total{session="1", organisation="acme"}[1m]))',
        "histogram_quantile(0.99, sum by (le) (rate(sdlab_request_duration_seconds_bucket"
        '{service="inventory", session="1", organisation="acme"}[5m])))',
        'sdlab_queue_depth{organisation="acme", session="1"} > 10',
        'rate(sdlab_requests_total{session="1",organisation="acme"}[5m] offset 1m) * 1e3',
    ],
)
def test_expressions_confined_to_the_session_pass(expr):
    expression_confined(expr, 1, "acme")


@pytest.mark.parametrize(
    "expr",
    [
        'sdlab_requests_total{session="1", organisation="acme"} or up',
        "rate(up[1m])",
        'sum(rate(sdlab_requests_total{session="1", organisation="acme"}[1m]))'
        " / sum(rate(sdlab_requests_total[1m]))",
        '{__name__=~".+"}',
        'sdlab_requests_total{session!="1", organisation="acme"}',
        # session ids are numbered per organisation: the label alone reaches every one's
        'sdlab_requests_total{session="1"}',
        'sdlab_requests_total{session="1", organisation="other"}',
        'sdlab_requests_total{session="1", organisation=~"acme|other"}',
        # every series name of the session, a drill's hidden scenario's too
        'count by (__name__)({session="1", organisation="acme"})',
        '{__name__=~"sdlab_.*", session="1", organisation="acme"}',
    ],
)
def test_expressions_reaching_other_sessions_are_refused(expr):
    with pytest.raises(NotConfined):
        expression_confined(expr, 1, "acme")
