"""The application's one error type, and the one JSON envelope the API answers with."""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    status_code = 400

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class ValidationFailed(ApplicationError):
    """Input broke a rule; `extra` names the field(s)."""

    status_code = 422


class Conflict(ApplicationError):
    status_code = 409


class ErrorEnvelope(serializers.Serializer):
    """The body of every API error: what went wrong, and what it concerns."""

    message = serializers.CharField()
    extra = serializers.DictField(help_text="What the error concerns, e.g. the field at fault.")


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Maps every error to {"message": ..., "extra": {...}}."""
    if isinstance(exc, ApplicationError):
        return Response({"message": exc.message, "extra": exc.extra}, status=exc.status_code)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.ValidationError):
        response.status_code = 422
        return Response(
            {"message": "Validation error", "extra": {"fields": response.data}},
            status=422,
        )
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
    response.data = {"message": str(detail) or "Error", "extra": {}}
    return response
