"""One scoping mechanism: non-member 404, member without the role 403, no role declared
refused (fail closed), for function views and for API views alike."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import Http404, HttpResponse
from django.test import RequestFactory
from rest_framework.response import Response
from rest_framework.test import force_authenticate
from rest_framework.views import APIView

from apps.accounts.access import role_required
from apps.accounts.models import Role


@role_required(Role.INSTRUCTOR)
def instructors_page(request):
    return HttpResponse(f"hello {request.membership.role}")


def call(view, organisation, user):
    request = RequestFactory().get("/somewhere")
    request.organisation = organisation  # type: ignore[attr-defined]
    request.user = user or AnonymousUser()
    return view(request)


def test_member_with_the_role_gets_in(org_a, member_factory):
    assert (
        call(instructors_page, org_a, member_factory(org_a, Role.INSTRUCTOR)).content
        == b"hello instructor"
    )
    assert call(instructors_page, org_a, member_factory(org_a, Role.OWNER)).status_code == 200


def test_member_without_the_role_gets_403(org_a, member_factory):
    with pytest.raises(PermissionDenied):
        call(instructors_page, org_a, member_factory(org_a, Role.LEARNER))


def test_member_of_another_organisation_gets_404(org_a, org_b, member_factory):
    with pytest.raises(Http404):
        call(instructors_page, org_a, member_factory(org_b, Role.OWNER))


def test_anonymous_is_sent_to_log_in(org_a):
    response = call(instructors_page, org_a, None)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_a_view_that_declares_no_role_is_refused():
    with pytest.raises(ImproperlyConfigured):
        role_required(None)  # type: ignore[arg-type]
    with pytest.raises(ImproperlyConfigured):
        role_required("superhero")


class InstructorsApi(APIView):
    required_role = Role.INSTRUCTOR

    def get(self, request):
        return Response({"role": request.membership.role})


class ForgetfulApi(APIView):
    def get(self, request):
        return Response({"secret": "anyone"})


def api_call(view_class, organisation, user):
    request = RequestFactory().get("/api/thing")
    request.organisation = organisation  # type: ignore[attr-defined]
    if user is not None:
        force_authenticate(request, user=user)
    return view_class.as_view()(request)


def test_api_view_scoped_by_role(org_a, org_b, member_factory):
    assert api_call(InstructorsApi, org_a, member_factory(org_a, Role.ADMIN)).data == {
        "role": "admin"
    }
    forbidden = api_call(InstructorsApi, org_a, member_factory(org_a, Role.LEARNER))
    assert forbidden.status_code == 403
    assert forbidden.data == {
        "message": "You do not have permission to perform this action.",
        "extra": {},
    }
    assert api_call(InstructorsApi, org_a, member_factory(org_b, Role.OWNER)).status_code == 404
    assert api_call(InstructorsApi, org_a, None).status_code in (401, 403)


def test_api_view_without_a_role_fails_closed(org_a, member_factory):
    with pytest.raises(ImproperlyConfigured):
        api_call(ForgetfulApi, org_a, member_factory(org_a, Role.OWNER))
