"""How an API view is described in the OpenAPI schemas, without per-view code.

A view is read the way it is written (STYLE.md): its nested `InputSerializer` is the request
body (or the query of a view that only reads), a nested `FilterSerializer` the query of its
GET, and its nested `OutputSerializer` the answer. Each operation also lists the errors it
can answer with, all in the one `ErrorEnvelope`.
`@extend_schema` on a view still overrides any of this.
"""

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ComponentRegistry
from rest_framework.permissions import AllowAny

from apps.tenants.errors import ErrorEnvelope

BODY_METHODS = {"POST", "PUT", "PATCH"}


class AutoSchema(SpectacularAutoSchema):
    def get_request_serializer(self) -> Any:
        if self.method in BODY_METHODS and hasattr(self.view, "InputSerializer"):
            return self.view.InputSerializer
        return super().get_request_serializer()

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        query = self.query_serializer()
        if query is not None:
            parameters.append(query)
        return parameters

    def query_serializer(self) -> Any:
        """A GET's query: the view's FilterSerializer, or the InputSerializer of a view that
        only reads (in a view that also writes, InputSerializer is the body)."""
        if self.method != "GET":
            return None
        if hasattr(self.view, "FilterSerializer"):
            return self.view.FilterSerializer
        writes = any(hasattr(self.view, method.lower()) for method in BODY_METHODS)
        return None if writes else getattr(self.view, "InputSerializer", None)

    def get_response_serializers(self) -> Any:
        if hasattr(self.view, "OutputSerializer"):
            if self.method == "GET" and getattr(self.view, "paginated", False):
                # a page of results: spectacular wraps the list in the view's pagination
                return self.view.OutputSerializer(many=True)
            return self.view.OutputSerializer
        return super().get_response_serializers()

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        # Nested serializers are named after their view: SlugAvailabilityApi.OutputSerializer
        # is "SlugAvailabilityOutput", not one of many "Output"s.
        outer, _, inner = type(serializer).__qualname__.rpartition(".")
        if outer and outer.isidentifier():
            return outer.removesuffix("Api") + inner.removesuffix("Serializer")
        return super().get_serializer_name(serializer, direction)

    def get_operation(
        self,
        path: str,
        path_regex: str,
        path_prefix: str,
        method: str,
        registry: ComponentRegistry,
    ) -> dict[str, Any] | None:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        envelope = self.resolve_serializer(ErrorEnvelope, "response").ref
        responses = operation["responses"]
        for status, description in self.error_statuses(operation):
            responses.setdefault(
                str(status),
                {
                    "content": {
                        media_type: {"schema": envelope}
                        for media_type in self.map_renderers("media_type")
                    },
                    "description": description,
                },
            )
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def error_statuses(self, operation: dict[str, Any]) -> list[tuple[int, str]]:
        """The errors api_exception_handler can answer this operation with."""
        statuses = []
        if not all(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            # RolePermission: anonymous -> 401/403, not a member -> 404, too low a role -> 403.
            statuses += [
                (401, "Not signed in."),
                (403, "Not signed in, or without the role this needs."),
                (404, "Not found, or not a member of this organisation."),
            ]
        elif "{" in self.path:
            statuses.append((404, "Not found."))
        takes_input = "requestBody" in operation or any(
            p.get("in") == "query" for p in operation.get("parameters", [])
        )
        if takes_input:
            statuses.append((422, "The input broke a rule; `extra` names the field(s)."))
        if self.view.get_throttles():
            statuses.append((429, "Too many requests; try again later."))
        return statuses
