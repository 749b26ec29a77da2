"""Real responses checked against the committed OpenAPI schemas (config/openapi/)."""

import functools
from typing import Any

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from openapi_core import OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIRequest, DjangoOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.templating.responses.exceptions import ResponseNotFound

from apps.tenants.management.commands.openapi_schemas import SITES, schema_path


class RequestAsSent(DjangoOpenAPIRequest):
    """Matched by its literal path, as a client's would be: Django's route may name a path
    parameter (`<int:pk>`) differently from the schema (`{id}`)."""

    @property
    def path_pattern(self) -> None:
        return None


@functools.cache
def committed_schema(site: str) -> OpenAPI:
    return OpenAPI.from_path(schema_path(site))


def assert_conforms(response: HttpResponse, *, site: str) -> None:
    """Fails the test unless `site`'s committed schema documents the request's operation,
    the response's status code, and a body of the shape the response has."""
    assert site in SITES, f"site is one of {SITES}, not {site!r}"
    request = getattr(response, "wsgi_request", None)
    assert isinstance(request, HttpRequest), (
        "assert_conforms needs a response from the test client (it carries wsgi_request)"
    )
    where = f"{request.method} {request.path}"
    document = schema_path(site).relative_to(settings.BASE_DIR)
    errors = list(
        committed_schema(site).iter_response_errors(
            RequestAsSent(request), DjangoOpenAPIResponse(response)
        )
    )
    if not errors:
        return
    error = errors[0]
    if isinstance(error, PathNotFound | OperationNotFound):
        pytest.fail(f"{where} is not an operation in the {site} schema ({document})")
    if isinstance(error, ResponseNotFound):
        pytest.fail(
            f"{where} answered {response.status_code}, a status its operation in {document} "
            f"does not document (it documents {', '.join(error.availableresponses)})"
        )
    pytest.fail(
        f"{where} answered {response.status_code} with a body {document} does not allow:\n"
        + "\n".join(f"  - {problem}" for problem in _schema_problems(error))
    )


def _schema_problems(error: BaseException) -> list[str]:
    """The JSON-schema errors behind an openapi-core error, as 'where: what' lines."""
    cause: Any = error
    while cause is not None and not getattr(cause, "schema_errors", None):
        cause = cause.__cause__
    if cause is None:
        return [str(error)]
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(body)'}: {e.message}"
        for e in cause.schema_errors
    ]
