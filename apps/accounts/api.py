"""The organisation's admin API: members, invitations, settings and the audit log.

Every view is an admin's (`required_role`), scoped to the organisation of the host by
`RolePermission`, and answers errors with the one envelope of apps.tenants.errors."""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.invitations import (
    invitation_create,
    invitation_link_create,
    invitation_resend,
    invitation_revoke,
    invitation_url,
    invitations_create_bulk,
)
from apps.accounts.models import LINK_ROLES, Invitation, Membership, Role
from apps.accounts.selectors import audit_entries, invitations_list, members_list, seats_used
from apps.accounts.services import (
    membership_remove,
    membership_role_change,
    organisation_settings_update,
)
from apps.tenants.errors import ErrorEnvelope

CONFLICT = {409: ErrorEnvelope}


class AdminApi(APIView):
    required_role = Role.ADMIN
    pagination_class = PageNumberPagination
    paginated = False  # True: GET answers a page of OutputSerializer items

    @property
    def organisation(self) -> Any:
        return self.request.organisation  # type: ignore[attr-defined]

    @property
    def actor(self) -> Membership:
        return self.request.membership  # type: ignore[attr-defined]

    def page_of(self, items: Any, serializer: type[serializers.Serializer]) -> Response:
        paginator = self.pagination_class()
        page: Any = paginator.paginate_queryset(items, self.request, view=self)
        return paginator.get_paginated_response(serializer(page, many=True).data)


class MemberOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField(source="user.email")
    display_name = serializers.CharField(source="user.display_name")
    role = serializers.ChoiceField(choices=Role.choices)
    joined_at = serializers.DateTimeField(source="created_at")


class MemberListApi(AdminApi):
    paginated = True
    OutputSerializer = MemberOutput

    class FilterSerializer(serializers.Serializer):
        q = serializers.CharField(required=False, allow_blank=True, max_length=200)
        role = serializers.ChoiceField(choices=Role.choices, required=False)

    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        members = members_list(
            organisation=self.organisation,
            search=filters.validated_data.get("q", ""),
            role=filters.validated_data.get("role", ""),
        )
        return self.page_of(members, MemberOutput)


class MemberDetailApi(AdminApi):
    OutputSerializer = MemberOutput

    class InputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=Role.choices)

    def member(self, pk: int) -> Membership:
        return get_object_or_404(
            Membership.objects.select_related("user", "organisation"),
            pk=pk,
            organisation=self.organisation,
        )

    @extend_schema(responses={200: MemberOutput, **CONFLICT})
    def patch(self, request: Request, pk: int) -> Response:
        target = self.member(pk)  # first: another organisation's member is 404, whatever the body
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = membership_role_change(
            actor=self.actor, membership=target, role=data.validated_data["role"]
        )
        return Response(MemberOutput(membership).data)

    @extend_schema(responses={204: None, **CONFLICT})
    def delete(self, request: Request, pk: int) -> Response:
        membership_remove(actor=self.actor, membership=self.member(pk))
        return Response(status=204)


class InvitationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    role = serializers.ChoiceField(choices=Role.choices)
    state = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    uses = serializers.IntegerField()
    max_uses = serializers.IntegerField()
    allowed_domain = serializers.CharField(allow_blank=True)

    def get_state(self, invitation: Invitation) -> str:
        from django.utils import timezone

        return invitation.state(timezone.now())


class InvitationListApi(AdminApi):
    paginated = True
    OutputSerializer = InvitationOutput

    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=["pending", "all"], required=False)

    class InputSerializer(serializers.Serializer):
        email = serializers.CharField(max_length=254)
        role = serializers.ChoiceField(choices=Role.choices, default=Role.LEARNER)

    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        state = filters.validated_data.get("state", "pending")
        return self.page_of(
            invitations_list(organisation=self.organisation, state=state), InvitationOutput
        )

    @extend_schema(responses={201: InvitationOutput, **CONFLICT})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invited = invitation_create(actor=self.actor, **data.validated_data)
        return Response(InvitationOutput(invited.invitation).data, status=201)


class InvitationBulkApi(AdminApi):
    class InputSerializer(serializers.Serializer):
        csv = serializers.CharField(max_length=256 * 1024, help_text="email or email,role per line")
        role = serializers.ChoiceField(choices=Role.choices, default=Role.LEARNER)

    class RowOutput(serializers.Serializer):
        row = serializers.IntegerField()
        email = serializers.CharField()
        role = serializers.CharField()
        ok = serializers.BooleanField()
        message = serializers.CharField()

    class OutputSerializer(serializers.Serializer):
        invited = serializers.IntegerField()
        refused = serializers.IntegerField()
        rows = serializers.ListField(child=serializers.DictField())

    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        report = invitations_create_bulk(
            actor=self.actor,
            text=data.validated_data["csv"],
            default_role=data.validated_data["role"],
        )
        body = {
            "invited": report.invited,
            "refused": report.refused,
            "rows": self.RowOutput(report.rows, many=True).data,
        }
        return Response(body, status=200)


class InvitationLinkApi(AdminApi):
    class InputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=LINK_ROLES, default=Role.LEARNER)
        expires_in_days = serializers.IntegerField(default=7)
        max_uses = serializers.IntegerField(default=50)
        allowed_domain = serializers.CharField(default="", allow_blank=True, max_length=255)

    class OutputSerializer(InvitationOutput):
        url = serializers.CharField(help_text="The link to share; shown only in this answer.")

    @extend_schema(responses={201: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invited = invitation_link_create(actor=self.actor, **data.validated_data)
        invitation = invited.invitation
        invitation.url = invitation_url(organisation=self.organisation, token=invited.token)  # type: ignore[attr-defined]
        return Response(self.OutputSerializer(invitation).data, status=201)


class InvitationDetailApi(AdminApi):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        invitation = get_object_or_404(Invitation, pk=pk, organisation=self.organisation)
        invitation_revoke(actor=self.actor, invitation=invitation)
        return Response(status=204)


class InvitationResendApi(AdminApi):
    OutputSerializer = InvitationOutput

    @extend_schema(request=None, responses={200: InvitationOutput, **CONFLICT})
    def post(self, request: Request, pk: int) -> Response:
        invitation = get_object_or_404(Invitation, pk=pk, organisation=self.organisation)
        invited = invitation_resend(actor=self.actor, invitation=invitation)
        return Response(InvitationOutput(invited.invitation).data)


class OrganisationApi(AdminApi):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(required=False, max_length=200)
        allowed_email_domains = serializers.ListField(
            child=serializers.CharField(max_length=255), required=False, max_length=100
        )

    class OutputSerializer(serializers.Serializer):
        slug = serializers.CharField()
        name = serializers.CharField()
        allowed_email_domains = serializers.ListField(child=serializers.CharField())
        seats = serializers.IntegerField()
        seats_used = serializers.IntegerField()
        sandbox_quota = serializers.IntegerField()

    def _out(self, organisation: Any) -> Response:
        organisation.seats_used = seats_used(organisation=organisation)
        return Response(self.OutputSerializer(organisation).data)

    def get(self, request: Request) -> Response:
        return self._out(self.organisation)

    def patch(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        organisation = organisation_settings_update(
            actor=self.actor, organisation=self.organisation, **data.validated_data
        )
        return self._out(organisation)


class AuditEntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor_email")
    action = serializers.CharField()
    target = serializers.CharField()
    before = serializers.DictField()
    after = serializers.DictField()


class AuditLogApi(AdminApi):
    paginated = True
    OutputSerializer = AuditEntryOutput

    class FilterSerializer(serializers.Serializer):
        action = serializers.CharField(required=False, max_length=60)
        actor = serializers.CharField(required=False, max_length=254)
        since = serializers.DateTimeField(required=False)
        until = serializers.DateTimeField(required=False)

    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        entries = audit_entries(organisation=self.organisation, **filters.validated_data)
        return self.page_of(entries, AuditEntryOutput)
