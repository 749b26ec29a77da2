from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.accounts.access import role_required
from apps.accounts.forms import OrganisationLoginForm
from apps.accounts.models import Role
from apps.accounts.selectors import organisations_of


class LoginView(auth_views.LoginView):
    form_class = OrganisationLoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = False


@role_required(Role.LEARNER)
def workspace_home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/workspace_home.html",
        {
            "membership": request.membership,  # type: ignore[attr-defined]
            "other_organisations": [
                o for o in organisations_of(user=request.user) if o != request.tenant  # type: ignore[arg-type, attr-defined]
            ],
        },
    )
