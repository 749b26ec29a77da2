from django.contrib.auth import views as auth_views
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.accounts.access import role_required
from apps.accounts.forms import OrganisationLoginForm
from apps.accounts.models import Role, User
from apps.accounts.selectors import organisations_of


class LoginView(auth_views.LoginView):
    form_class = OrganisationLoginForm
    template_name = "accounts/login.html"


@role_required(Role.LEARNER)
def workspace_home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not isinstance(user, User):  # role_required lets only members through
        raise PermissionDenied
    here = getattr(request, "organisation", None)
    others = [o for o in organisations_of(user=user) if o != here]
    return render(
        request,
        "accounts/workspace_home.html",
        {"membership": request.membership, "other_organisations": others},  # type: ignore[attr-defined]
    )
