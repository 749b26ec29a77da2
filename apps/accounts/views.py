"""Identity pages: a new organisation after sign-up, the workspace home, joining by
invitation, and the API token of a person's scripts."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from rest_framework.authtoken.models import Token

from apps.accounts.access import open_to_visitors, role_required
from apps.accounts.forms import JoinForm, OrganisationForm, form_error
from apps.accounts.invitations import (
    invitation_accept,
    invitation_accept_new_user,
    invitation_for_token,
)
from apps.accounts.models import Invitation, InvitationKind, Role, User
from apps.accounts.selectors import organisations_of
from apps.accounts.services import organisation_signup
from apps.tenants.errors import ApplicationError
from apps.tenants.views import organisation_url


@login_required
@require_http_methods(["GET", "POST"])
def organisation_new(request: HttpRequest) -> HttpResponse:
    """Public site: a signed-up person names their organisation and becomes its owner."""
    form = OrganisationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            organisation = organisation_signup(
                user=request.user,  # type: ignore[arg-type]
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"],
            )
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            return HttpResponseRedirect(organisation_url(request, organisation.slug))
    status = 422 if form.errors else 200
    return render(
        request,
        "accounts/organisation_new.html",
        {"form": form, "base_domain": settings.BASE_DOMAIN},
        status=status,
    )


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


@open_to_visitors
@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, token: str) -> HttpResponse:
    """An invitation's landing page on the organisation's site: accept it signed in, or
    (for an email invitation) create the account right here."""
    try:
        invitation: Invitation | None = invitation_for_token(token=token)
    except ApplicationError as exc:
        return render(request, "accounts/join.html", {"problem": exc.message}, status=410)
    assert invitation is not None  # noqa: S101 (narrowing for the type checker)
    if invitation.organisation != getattr(request, "organisation", None):
        return render(
            request,
            "accounts/join.html",
            {"problem": "This invitation is not valid here."},
            status=404,
        )
    form = JoinForm(request.POST or None)
    context = {"invitation": invitation, "form": form, "problem": None}
    if request.method == "POST":
        try:
            if request.user.is_authenticated:
                invitation_accept(user=request.user, token=token)
            elif invitation.kind == InvitationKind.EMAIL and form.is_valid():
                membership = invitation_accept_new_user(
                    token=token,
                    password=form.cleaned_data["password1"],
                    display_name=form.cleaned_data["display_name"],
                )
                login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            else:
                return render(request, "accounts/join.html", context, status=422)
        except ApplicationError as exc:
            if exc.extra.get("field") == "password":
                form.add_error("password1", exc.message)
            else:
                context["problem"] = exc.message
            return render(request, "accounts/join.html", context, status=422)
        messages.success(request, f"Welcome to {invitation.organisation.name}.")
        return redirect("home")
    return render(request, "accounts/join.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def api_token(request: HttpRequest) -> HttpResponse:
    """A person's token for scripts (Authorization: Token ...); a new one replaces the old."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    token = Token.objects.filter(user=user).first()
    revealed = None
    if request.method == "POST":
        if token is not None:
            token.delete()
        if request.POST.get("action") != "revoke":
            token = Token.objects.create(user=user)
            revealed = token.key
        else:
            token = None
    return render(
        request, "accounts/api_token.html", {"has_token": token is not None, "revealed": revealed}
    )
