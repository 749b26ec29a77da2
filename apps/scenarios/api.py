"""Lab sessions over the API: start, list, read, stop and extend. A learner sees and
drives their own labs; instructors may read every lab of the organisation. And the
scenario catalog, read-only, for every member."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.scenarios.models import LabSession, LabSessionState
from apps.scenarios.selectors import catalog_scenario_get, catalog_scenarios
from apps.scenarios.services import lab_session_extend, lab_session_start, lab_session_stop
from apps.tenants.errors import ErrorEnvelope
from sandbox.spec import CATEGORIES

CONFLICT = {409: ErrorEnvelope}


class LabSessionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    learner = serializers.EmailField(source="learner.email")
    scenario_set = serializers.CharField()
    scenarios = serializers.ListField(child=serializers.ListField())
    state = serializers.ChoiceField(choices=LabSessionState.choices)
    failure_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    ready_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)


class LabApi(APIView):
    required_role = Role.LEARNER
    # Past the role, a lab is its learner's to drive (instructors read): checked per object.
    object_level = True

    def session(self, pk: int, *, drive: bool) -> LabSession:
        found = LabSession.objects.select_related("learner").filter(pk=pk).first()
        if found is None:
            raise NotFound()
        mine = found.learner_id == self.request.user.pk
        membership = self.request.membership  # type: ignore[attr-defined]
        if not mine and (drive or not membership.has_role(Role.INSTRUCTOR)):
            raise PermissionDenied("Only the learner drives a lab; instructors may read it.")
        return found


class LabListApi(LabApi):
    pagination_class = PageNumberPagination
    paginated = True
    OutputSerializer = LabSessionOutput

    class FilterSerializer(serializers.Serializer):
        everyone = serializers.BooleanField(
            required=False, help_text="instructors: every learner's labs"
        )

    class InputSerializer(serializers.Serializer):
        scenario_set = serializers.CharField(max_length=100)
        scenarios = serializers.ListField(required=False, help_text="[slug, {parameters}] items")
        ttl_seconds = serializers.IntegerField(required=False)

    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        sessions = LabSession.objects.select_related("learner")
        membership = request.membership  # type: ignore[attr-defined]
        if not (filters.validated_data.get("everyone") and membership.has_role(Role.INSTRUCTOR)):
            sessions = sessions.filter(learner=request.user)  # type: ignore[misc]
        paginator = self.pagination_class()
        page: Any = paginator.paginate_queryset(sessions, request, view=self)
        return paginator.get_paginated_response(LabSessionOutput(page, many=True).data)

    @extend_schema(responses={201: LabSessionOutput, **CONFLICT})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = lab_session_start(
            organisation=request.organisation,  # type: ignore[attr-defined]
            learner=request.user,  # type: ignore[arg-type]
            **data.validated_data,
        )
        return Response(LabSessionOutput(session).data, status=201)


class LabDetailApi(LabApi):
    OutputSerializer = LabSessionOutput

    def get(self, request: Request, pk: int) -> Response:
        return Response(LabSessionOutput(self.session(pk, drive=False)).data)


class LabStopApi(LabApi):
    OutputSerializer = LabSessionOutput

    @extend_schema(request=None, responses={200: LabSessionOutput})
    def post(self, request: Request, pk: int) -> Response:
        session = self.session(pk, drive=True)
        stopped = lab_session_stop(session_id=session.pk, learner=request.user)  # type: ignore[arg-type]
        return Response(LabSessionOutput(stopped).data)


class LabExtendApi(LabApi):
    OutputSerializer = LabSessionOutput

    class InputSerializer(serializers.Serializer):
        seconds = serializers.IntegerField(default=1800)

    @extend_schema(responses={200: LabSessionOutput, **CONFLICT})
    def post(self, request: Request, pk: int) -> Response:
        session = self.session(pk, drive=True)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        extended = lab_session_extend(
            session_id=session.pk,
            learner=request.user,  # type: ignore[arg-type]
            seconds=data.validated_data["seconds"],
        )
        return Response(LabSessionOutput(extended).data)


# -- the scenario catalog: what a lab can inject, and what answers it


class ParameterOutput(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["int", "float", "bool", "choice"])
    default = serializers.JSONField()
    minimum = serializers.FloatField(allow_null=True)
    maximum = serializers.FloatField(allow_null=True)
    choices = serializers.ListField(child=serializers.CharField())
    unit = serializers.CharField(allow_blank=True)
    bounds = serializers.CharField(help_text="the allowed values, in words")
    help = serializers.CharField()


class MetricOutput(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=["counter", "gauge", "histogram"])
    help = serializers.CharField()
    labels = serializers.ListField(child=serializers.CharField())


class SignatureOutput(serializers.Serializer):
    description = serializers.CharField()
    within_seconds = serializers.FloatField()
    expectations = serializers.ListField(child=serializers.CharField())


class ExplanationSectionOutput(serializers.Serializer):
    heading = serializers.CharField()
    markdown = serializers.CharField()


class MitigationOutput(serializers.Serializer):
    slug = serializers.CharField()
    title = serializers.CharField()
    summary = serializers.CharField()
    parameters = ParameterOutput(many=True)
    effect = SignatureOutput(help_text="what turning it on changes, with the scenario on")


class ScenarioOutput(serializers.Serializer):
    slug = serializers.CharField()
    category = serializers.ChoiceField(choices=list(CATEGORIES))
    category_title = serializers.CharField()
    title = serializers.CharField()
    teaches = serializers.CharField()
    explanation = serializers.CharField(help_text="Markdown, rendered without raw HTML")
    explanation_sections = ExplanationSectionOutput(many=True)
    parameters = ParameterOutput(many=True)
    metrics = MetricOutput(many=True)
    signature = SignatureOutput()
    mitigations = MitigationOutput(many=True)
    load = serializers.DictField(child=serializers.FloatField())


class ScenarioListApi(APIView):
    required_role = Role.LEARNER
    pagination_class = PageNumberPagination
    paginated = True
    OutputSerializer = ScenarioOutput

    class FilterSerializer(serializers.Serializer):
        category = serializers.ChoiceField(choices=list(CATEGORIES), required=False)
        q = serializers.CharField(
            required=False, allow_blank=True, max_length=100, help_text="words of title or lesson"
        )

    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        found = catalog_scenarios(
            category=filters.validated_data.get("category", ""),
            search=filters.validated_data.get("q", ""),
        )
        paginator = self.pagination_class()
        page: Any = paginator.paginate_queryset(found, request, view=self)
        return paginator.get_paginated_response(ScenarioOutput(page, many=True).data)


class ScenarioDetailApi(APIView):
    required_role = Role.LEARNER
    OutputSerializer = ScenarioOutput

    def get(self, request: Request, slug: str) -> Response:
        found = catalog_scenario_get(slug=slug)
        if found is None:
            raise NotFound(f"No scenario {slug!r} in the catalog.")
        return Response(ScenarioOutput(found).data)
