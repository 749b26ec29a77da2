"""Progress over the API: a learner's enrolments and answers; instructors' cohorts and a
cohort's progress on a tutorial. A learner records progress only on their own
enrolments; instructors read everyone's."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.progress.models import Cohort, Enrolment, EnrolmentStatus, StepStatus
from apps.progress.reports import FILTERS, cohort_report, cohorts_list
from apps.progress.services import enrolment_create, quiz_answer_submit
from apps.progress.teaching import cohort_create
from apps.tenants.errors import ErrorEnvelope

CONFLICT = {409: ErrorEnvelope}


class StepOutput(serializers.Serializer):
    step = serializers.CharField(source="step_slug")
    position = serializers.IntegerField()
    status = serializers.ChoiceField(choices=StepStatus.choices)
    attempts = serializers.IntegerField(help_text="wrong answers in this step")
    score = serializers.IntegerField()
    opened_at = serializers.DateTimeField(allow_null=True)
    passed_at = serializers.DateTimeField(allow_null=True)


class EnrolmentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    learner = serializers.IntegerField(source="learner_id")
    tutorial = serializers.CharField(source="tutorial_slug")
    own = serializers.BooleanField(help_text="the organisation's own tutorial")
    status = serializers.ChoiceField(choices=EnrolmentStatus.choices)
    score = serializers.IntegerField()
    max_score = serializers.IntegerField()
    lab_session = serializers.IntegerField(source="lab_session_id", allow_null=True)
    enrolled_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    steps = StepOutput(many=True)


class ProgressApi(APIView):
    required_role = Role.LEARNER
    # Past the role, an enrolment is its learner's to write (instructors read): per object.
    object_level = True

    def enrolment(self, pk: int, *, write: bool) -> Enrolment:
        found = Enrolment.objects.prefetch_related("steps").filter(pk=pk).first()
        if found is None:
            raise NotFound()
        mine = found.learner_id == self.request.user.pk
        membership = self.request.membership  # type: ignore[attr-defined]
        if not mine and (write or not membership.has_role(Role.INSTRUCTOR)):
            raise PermissionDenied("Only the learner records their progress; instructors read it.")
        return found


class EnrolmentListApi(ProgressApi):
    pagination_class = PageNumberPagination
    paginated = True
    OutputSerializer = EnrolmentOutput

    class InputSerializer(serializers.Serializer):
        tutorial = serializers.SlugField(max_length=80)

    def get(self, request: Request) -> Response:
        mine = Enrolment.objects.filter(learner=request.user).prefetch_related("steps")  # type: ignore[misc]
        paginator = self.pagination_class()
        page: Any = paginator.paginate_queryset(mine, request, view=self)
        return paginator.get_paginated_response(EnrolmentOutput(page, many=True).data)

    @extend_schema(responses={201: EnrolmentOutput, 404: ErrorEnvelope})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        enrolment = enrolment_create(
            learner=request.user,  # type: ignore[arg-type]
            slug=data.validated_data["tutorial"],
        )
        fresh = Enrolment.objects.prefetch_related("steps").get(pk=enrolment.pk)
        return Response(EnrolmentOutput(fresh).data, status=201)


class EnrolmentDetailApi(ProgressApi):
    OutputSerializer = EnrolmentOutput

    def get(self, request: Request, pk: int) -> Response:
        return Response(EnrolmentOutput(self.enrolment(pk, write=False)).data)


class AnswerOutput(serializers.Serializer):
    right = serializers.BooleanField()
    explanations = serializers.ListField(child=serializers.CharField())
    step_passed = serializers.BooleanField()
    tutorial_completed = serializers.BooleanField()


class EnrolmentAnswerApi(ProgressApi):
    OutputSerializer = AnswerOutput

    class InputSerializer(serializers.Serializer):
        step = serializers.SlugField(max_length=80)
        check = serializers.SlugField(max_length=80)
        choices = serializers.ListField(
            child=serializers.IntegerField(min_value=0), allow_empty=False, max_length=20
        )

    @extend_schema(responses={200: AnswerOutput, **CONFLICT})
    def post(self, request: Request, pk: int) -> Response:
        enrolment = self.enrolment(pk, write=True)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = quiz_answer_submit(
            learner=request.user,  # type: ignore[arg-type]
            enrolment_id=enrolment.pk,
            step_slug=data.validated_data["step"],
            check_id=data.validated_data["check"],
            chosen=data.validated_data["choices"],
        )
        recorded = outcome.recorded
        return Response(
            AnswerOutput(
                {
                    "right": outcome.right,
                    "explanations": outcome.explanations,
                    "step_passed": bool(recorded and recorded.step_passed),
                    "tutorial_completed": bool(recorded and recorded.tutorial_completed),
                }
            ).data
        )


class CohortOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()


class CohortListApi(APIView):
    required_role = Role.INSTRUCTOR
    pagination_class = PageNumberPagination
    paginated = True
    OutputSerializer = CohortOutput

    class FilterSerializer(serializers.Serializer):
        q = serializers.CharField(required=False, max_length=100, help_text="name contains")

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=120)
        description = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = self.pagination_class()
        found = cohorts_list(search=filters.validated_data.get("q", ""))
        page: Any = paginator.paginate_queryset(found, request, view=self)
        return paginator.get_paginated_response(CohortOutput(page, many=True).data)

    @extend_schema(responses={201: CohortOutput, **CONFLICT})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cohort = cohort_create(
            organisation=request.organisation,  # type: ignore[attr-defined]
            actor=request.user,  # type: ignore[arg-type]
            **data.validated_data,
        )
        return Response(CohortOutput(cohort).data, status=201)


class CellOutput(serializers.Serializer):
    status = serializers.CharField(help_text="locked, open, passed, or none (not enrolled)")
    attempts = serializers.IntegerField()
    seconds = serializers.FloatField(allow_null=True, help_text="time on the step, once passed")


class RowOutput(serializers.Serializer):
    learner = serializers.IntegerField(source="learner_id")
    email = serializers.EmailField()
    state = serializers.CharField()
    score = serializers.SerializerMethodField()
    stuck = serializers.CharField(source="stuck_reason")
    cells = CellOutput(many=True)

    def get_score(self, row: Any) -> int | None:
        return row.enrolment.score if row.enrolment else None


class FunnelOutput(serializers.Serializer):
    step = serializers.CharField(source="slug")
    title = serializers.CharField()
    passed = serializers.IntegerField()
    share = serializers.FloatField()
    median_seconds = serializers.FloatField(allow_null=True)


class CohortProgressOutput(serializers.Serializer):
    tutorial = serializers.CharField(source="tutorial.slug")
    steps = serializers.ListField(child=serializers.CharField())
    learners = serializers.IntegerField()
    enrolled = serializers.IntegerField()
    completed = serializers.IntegerField()
    funnel = FunnelOutput(many=True)
    rows = RowOutput(many=True)


class CohortProgressApi(APIView):
    required_role = Role.INSTRUCTOR
    OutputSerializer = CohortProgressOutput

    class FilterSerializer(serializers.Serializer):
        tutorial = serializers.SlugField(max_length=80)
        show = serializers.ChoiceField(choices=FILTERS, required=False, default="all")
        q = serializers.CharField(required=False, max_length=100, help_text="learner contains")

    def get(self, request: Request, pk: int) -> Response:
        cohort = Cohort.objects.filter(pk=pk).first()
        if cohort is None:
            raise NotFound()
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        report = cohort_report(cohort=cohort, tutorial_slug=filters.validated_data["tutorial"])
        if report is None:
            raise NotFound("No such tutorial.")
        rows = report.filtered(filters.validated_data["show"], filters.validated_data.get("q", ""))
        body = {
            "tutorial": report.tutorial,
            "steps": [slug for slug, _ in report.steps],
            "learners": report.learners,
            "enrolled": report.enrolled,
            "completed": report.completed,
            "funnel": report.funnel,
            "rows": rows,
        }
        return Response(CohortProgressOutput(body).data)
