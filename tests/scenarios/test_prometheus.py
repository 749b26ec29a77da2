"""A real Prometheus (Debian's package) on loopback discovers a running sandbox through
the platform's HTTP service discovery and scrapes it through the platform's proxy."""

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from apps.scenarios.events import redis_prefix, relay_key, relay_redis
from apps.scenarios.services import lab_session_stop
from config.localservices import free_port
from tests.conftest import make_member
from tests.scenarios.test_relay import running_session
from tests.support.servers import asgi_server, celery_worker, stop, wait_for

pytestmark = pytest.mark.xdist_group("lab-sessions")
PROMETHEUS = shutil.which("prometheus")


def query(port: int, promql: str) -> list:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())["data"]["result"]
    except OSError:
        return []


@pytest.mark.skipif(
    PROMETHEUS is None,
    reason="Prometheus is not installed (make install installs Debian's package where "
    "apt-get may run)",
)
@pytest.mark.worker
def test_prometheus_discovers_and_scrapes_a_running_sandbox(
    committed_organisations, sandbox_root, tmp_path: Path
):
    organisation = committed_organisations("Scraped")
    learner = make_member(organisation)
    with celery_worker(SANDBOX_ROOT=str(sandbox_root)), asgi_server() as web:
        session = running_session(organisation, learner, sandbox_root)
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: sandboxes\n"
            "    http_sd_configs:\n"
            f"      - url: http://127.0.0.1:{web}/internal/prometheus/targets\n"
            "        refresh_interval: 1s\n"
        )
        port = free_port()
        process = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            promql = f'sum(rate(sdlab_requests_total{{session="{session.pk}"}}[5s]))'
            found = wait_for(lambda: query(port, promql), "Prometheus to have the rate", 90)
            assert float(found[0]["value"][1]) > 0
            labels = query(port, f'up{{session="{session.pk}"}}')[0]["metric"]
            assert labels["organisation"] == organisation.slug
            assert labels["job"] == "sandboxes"
        finally:
            stop(process)
        with tenant_context(organisation):
            lab_session_stop(session_id=session.pk)


def test_the_proxy_serves_only_listed_sandboxes_and_needs_the_token(db, settings, org_a):
    client = Client()
    path = f"/internal/prometheus/sandboxes/{org_a.schema_name}/424242/metrics"
    assert client.get(path).status_code == 404  # not in the registry: no address to ask
    key = relay_key(org_a.schema_name, 424242)
    registry = f"{redis_prefix()}:running"
    relay_redis().hset(registry, key, json.dumps({"address": "unix:///nonexistent.sock"}))
    try:
        assert client.get(path).status_code == 503  # listed, but nobody answers there
        listed = client.get("/internal/prometheus/targets").json()
        mine = [g for g in listed if g["labels"]["session"] == "424242"]
        assert mine[0]["labels"]["organisation"] == org_a.slug
        assert mine[0]["labels"]["__metrics_path__"] == path
        settings.METRICS_TOKEN = "s3cret-token"
        assert client.get("/internal/prometheus/targets").status_code == 401
        assert client.get(path).status_code == 401
        granted = client.get(
            "/internal/prometheus/targets", HTTP_AUTHORIZATION="Bearer s3cret-token"
        )
        assert granted.status_code == 200
    finally:
        relay_redis().hdel(registry, key)
