import json

import httpx
from django.test import override_settings

from config.localservices import free_port
from tests.support.servers import asgi_server


def test_healthz_is_alive(site_client, db):
    response = site_client(None).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_when_postgresql_and_redis_answer(site_client, db):
    response = site_client(None).get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_readyz_names_redis_when_redis_is_unreachable(site_client, db):
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        response = site_client(None).get("/readyz")
    assert response.status_code == 503
    body = json.loads(response.content)
    assert body["status"] == "unavailable"
    assert list(body["failing"]) == ["redis"]
    assert "Connection" in body["failing"]["redis"]


def test_readyz_also_answers_on_organisation_hosts(site_client, org_a):
    assert site_client(org_a).get("/readyz").status_code == 200


def test_reasons_do_not_leak_addresses(site_client, db):
    port = free_port()
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{port}/0"):
        body = site_client(None).get("/readyz").content.decode()
    assert str(port) not in body
    assert "127.0.0.1" not in body


def test_probes_answer_without_the_database_and_readyz_names_postgresql(transactional_db):
    closed = f"postgres://postgres@127.0.0.1:{free_port()}/nowhere"
    with asgi_server(DATABASE_URL=closed) as port:
        healthz = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        readyz = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
    assert healthz.status_code == 200
    assert readyz.status_code == 503
    assert list(readyz.json()["failing"]) == ["postgresql"]


def test_metrics_need_the_token_when_one_is_set(site_client, db):
    with override_settings(METRICS_TOKEN="scrape-secret"):
        client = site_client(None)
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
        allowed = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert allowed.status_code == 200
    assert b"django_http_requests_total_by_method_total" in allowed.content
