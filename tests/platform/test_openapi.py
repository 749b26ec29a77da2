"""The committed OpenAPI schemas match the code, and real responses match the schemas."""

import pytest
import yaml
from django.http import JsonResponse
from django.test import Client
from rest_framework.test import APIClient

from apps.tenants.management.commands.openapi_schemas import (
    CHECK_HINT,
    SITES,
    schema_path,
    schema_problems,
)
from tests.conftest import host_of
from tests.support.openapi import assert_conforms

SLUG_AVAILABILITY = "/api/v1/organisations/slug-availability"


def committed() -> dict[str, str | None]:
    return {site: schema_path(site).read_text(encoding="utf-8") for site in SITES}


def test_committed_schemas_are_valid_and_up_to_date():
    # No db fixture: generating a schema must not need the database.
    problems = schema_problems()
    assert not problems, "\n".join([*problems, CHECK_HINT])


def test_a_stale_schema_is_caught_with_a_diff():
    documents = committed()
    public = documents["public"]
    assert public is not None
    documents["public"] = public.replace("type: boolean", "type: string")

    problems = schema_problems(committed=documents)

    assert len(problems) == 1
    assert "config/openapi/public.yaml (committed)" in problems[0]
    assert "-          type: string\n+          type: boolean\n" in problems[0]


def test_a_missing_schema_is_caught():
    documents = committed()
    documents["tenant"] = None
    assert schema_problems(committed=documents) == ["config/openapi/tenant.yaml is missing\n"]


def test_every_error_answer_is_the_one_envelope():
    envelope = {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}
    errors = {}
    for site, text in committed().items():
        for path, operations in yaml.safe_load(text or "")["paths"].items():
            for method, operation in operations.items():
                for status, answer in operation["responses"].items():
                    if int(status) >= 400:
                        errors[site, method, path, status] = answer["content"]
    assert errors[("public", "get", SLUG_AVAILABILITY, "422")] == {"application/json": envelope}
    assert all(content == {"application/json": envelope} for content in errors.values())


@pytest.mark.parametrize("client_class", [Client, APIClient])
def test_an_available_slug_answer_conforms(client_class, db):
    response = client_class(HTTP_HOST=host_of(None)).get(SLUG_AVAILABILITY, {"slug": "Fresh-Team"})
    assert response.status_code == 200
    assert_conforms(response, site="public")


@pytest.mark.parametrize("query", [{"slug": "www"}, {}], ids=["reserved", "missing"])
def test_a_bad_slug_answer_conforms(site_client, db, query):
    response = site_client(None).get(SLUG_AVAILABILITY, query)
    assert response.status_code == 422
    assert_conforms(response, site="public")


@pytest.fixture
def real_answer(site_client, db):
    return site_client(None).get(SLUG_AVAILABILITY, {"slug": "fresh-team"})


def test_a_body_of_the_wrong_shape_is_rejected(real_answer):
    fabricated = JsonResponse({"slug": "fresh-team", "available": "yes", "message": "ok"})
    fabricated.wsgi_request = real_answer.wsgi_request  # type: ignore[attr-defined]

    with pytest.raises(pytest.fail.Exception, match=r"available: 'yes' is not of type 'boolean'"):
        assert_conforms(fabricated, site="public")


def test_a_missing_field_is_rejected(real_answer):
    fabricated = JsonResponse({"slug": "fresh-team", "available": True})
    fabricated.wsgi_request = real_answer.wsgi_request  # type: ignore[attr-defined]

    with pytest.raises(pytest.fail.Exception, match=r"'message' is a required property"):
        assert_conforms(fabricated, site="public")


def test_an_undocumented_status_is_rejected(real_answer):
    fabricated = JsonResponse({"message": "I'm a teapot", "extra": {}}, status=418)
    fabricated.wsgi_request = real_answer.wsgi_request  # type: ignore[attr-defined]

    with pytest.raises(pytest.fail.Exception, match=r"answered 418, a status .* does not document"):
        assert_conforms(fabricated, site="public")


def test_an_operation_missing_from_the_schema_is_rejected(real_answer):
    with pytest.raises(pytest.fail.Exception, match=r"is not an operation in the tenant schema"):
        assert_conforms(real_answer, site="tenant")
