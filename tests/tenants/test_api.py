"""The public API answers in one envelope and names the field that was wrong."""


def test_free_address_is_available(site_client, db):
    response = site_client(None).get(
        "/api/v1/organisations/slug-availability", {"slug": "Fresh-Team"}
    )
    assert response.status_code == 200
    assert response.json() == {
        "slug": "fresh-team",
        "available": True,
        "message": "“fresh-team” is available.",
    }


def test_taken_address_is_not_available(site_client, org_a):
    response = site_client(None).get(
        "/api/v1/organisations/slug-availability", {"slug": org_a.slug}
    )
    assert response.status_code == 200
    assert response.json()["available"] is False
    assert "already taken" in response.json()["message"]


def test_invalid_address_is_a_422_naming_the_field(site_client, db):
    response = site_client(None).get("/api/v1/organisations/slug-availability", {"slug": "www"})
    assert response.status_code == 422
    assert response.json() == {
        "message": "“www” is reserved; choose another address.",
        "extra": {"field": "slug", "value": "www"},
    }


def test_missing_parameter_is_a_422_naming_the_field(site_client, db):
    response = site_client(None).get("/api/v1/organisations/slug-availability")
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == "Validation error"
    assert "slug" in body["extra"]["fields"]


def test_the_api_is_not_served_on_organisation_hosts(site_client, org_a):
    response = site_client(org_a).get("/api/v1/organisations/slug-availability", {"slug": "x-team"})
    assert response.status_code == 404
