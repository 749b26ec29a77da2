import json

from django.test import override_settings

from tests.support.servers import free_port


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
