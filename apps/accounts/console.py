"""The organisation admin console: members, invitations, settings and the audit log.

Server-rendered pages that work without JavaScript; htmx (installed by the build) makes
search live and role changes inline by asking for the same pages' fragments."""

from datetime import datetime, time, timedelta

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.access import role_required
from apps.accounts.forms import (
    BulkInvitationForm,
    InvitationForm,
    InvitationLinkForm,
    SettingsForm,
    form_error,
)
from apps.accounts.invitations import (
    invitation_create,
    invitation_link_create,
    invitation_resend,
    invitation_revoke,
    invitation_url,
    invitations_create_bulk,
)
from apps.accounts.models import Invitation, Membership, Role
from apps.accounts.selectors import (
    audit_actions,
    audit_entries,
    invitations_list,
    members_list,
    seats_used,
)
from apps.accounts.services import (
    membership_remove,
    membership_role_change,
    organisation_settings_update,
)
from apps.tenants.errors import ApplicationError

PAGE_SIZE = 25
CSV_MAX_BYTES = 256 * 1024


def _page(request: HttpRequest, items: object) -> Page:
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))  # type: ignore[arg-type]


def _summary(request: HttpRequest) -> dict:
    organisation = request.organisation  # type: ignore[attr-defined]
    return {
        "seats": organisation.seats,
        "seats_used": seats_used(organisation=organisation),
        "sandbox_quota": organisation.sandbox_quota,
        "roles": Role.choices,
    }


def _fragment(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


@role_required(Role.ADMIN)
@require_GET
def members(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    role = request.GET.get("role", "")
    if role not in Role.values:
        role = ""
    page = _page(
        request,
        members_list(organisation=request.organisation, search=search, role=role),  # type: ignore[attr-defined]
    )
    context = {**_summary(request), "page": page, "q": search, "role": role, "tab": "members"}
    template = (
        "accounts/console/_members_table.html"
        if _fragment(request)
        else "accounts/console/members.html"
    )
    return render(request, template, context)


def _membership(request: HttpRequest, pk: int) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user", "organisation"),
        pk=pk,
        organisation=request.organisation,  # type: ignore[attr-defined]
    )


@role_required(Role.ADMIN)
@require_POST
def member_role(request: HttpRequest, pk: int) -> HttpResponse:
    membership = _membership(request, pk)
    try:
        membership = membership_role_change(
            actor=request.membership,  # type: ignore[attr-defined]
            membership=membership,
            role=request.POST.get("role", ""),
        )
        messages.success(
            request, f"{membership.user.email} is now {membership.get_role_display()}."
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        if _fragment(request):
            row = _membership(request, pk)
            return render(
                request,
                "accounts/console/_member_row.html",
                {"m": row, "roles": Role.choices, "error": exc.message},
                status=exc.status_code,
            )
    if _fragment(request):
        return render(
            request, "accounts/console/_member_row.html", {"m": membership, "roles": Role.choices}
        )
    return redirect("console-members")


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    membership = _membership(request, pk)
    if request.method == "POST":
        try:
            membership_remove(actor=request.membership, membership=membership)  # type: ignore[attr-defined]
        except ApplicationError as exc:
            return render(
                request,
                "accounts/console/member_remove.html",
                {"m": membership, "problem": exc.message, "tab": "members"},
                status=exc.status_code,
            )
        messages.success(request, f"{membership.user.email} was removed.")
        return redirect("console-members")
    return render(
        request, "accounts/console/member_remove.html", {"m": membership, "tab": "members"}
    )


def _invitations_context(request: HttpRequest, **forms: object) -> dict:
    organisation = request.organisation  # type: ignore[attr-defined]
    state = request.GET.get("state", "pending")
    now = timezone.now()
    invitations = [
        (i, i.state(now)) for i in invitations_list(organisation=organisation, state=state)
    ]
    return {
        **_summary(request),
        "tab": "invitations",
        "state": state,
        "page": _page(request, invitations),
        "invite_form": forms.get("invite_form") or InvitationForm(),
        "bulk_form": forms.get("bulk_form") or BulkInvitationForm(),
        "link_form": forms.get("link_form") or InvitationLinkForm(),
        "report": forms.get("report"),
        "new_link": forms.get("new_link"),
    }


@role_required(Role.ADMIN)
@require_GET
def invitations(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/console/invitations.html", _invitations_context(request))


@role_required(Role.ADMIN)
@require_POST
def invitation_new(request: HttpRequest) -> HttpResponse:
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            invited = invitation_create(
                actor=request.membership,  # type: ignore[attr-defined]
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            )
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Invitation sent to {invited.invitation.email}.")
            return redirect("console-invitations")
    return render(
        request,
        "accounts/console/invitations.html",
        _invitations_context(request, invite_form=form),
        status=422,
    )


@role_required(Role.ADMIN)
@require_POST
def invitation_bulk(request: HttpRequest) -> HttpResponse:
    form = BulkInvitationForm(request.POST, request.FILES)
    report = None
    if form.is_valid():
        text = form.cleaned_data["csv_text"] or ""
        upload = form.cleaned_data.get("csv_file")
        try:
            if upload is not None:
                if upload.size > CSV_MAX_BYTES:
                    raise _TooBig()
                try:
                    text = upload.read().decode("utf-8-sig")
                except UnicodeDecodeError:
                    form.add_error("csv_file", "The file is not UTF-8 text.")
                    raise _Invalid() from None
            report = invitations_create_bulk(
                actor=request.membership,  # type: ignore[attr-defined]
                text=text,
                default_role=form.cleaned_data["role"],
            )
        except _TooBig:
            form.add_error("csv_file", f"The file is over {CSV_MAX_BYTES // 1024} KiB.")
        except _Invalid:
            pass
        except ApplicationError as exc:
            form.add_error("csv_text", exc.message)
    status = 200 if report is not None else 422
    return render(
        request,
        "accounts/console/invitations.html",
        _invitations_context(request, bulk_form=form, report=report),
        status=status,
    )


class _TooBig(Exception):
    pass


class _Invalid(Exception):
    pass


@role_required(Role.ADMIN)
@require_POST
def invitation_link_new(request: HttpRequest) -> HttpResponse:
    form = InvitationLinkForm(request.POST)
    new_link = None
    if form.is_valid():
        try:
            invited = invitation_link_create(
                actor=request.membership,  # type: ignore[attr-defined]
                role=form.cleaned_data["role"],
                expires_in_days=form.cleaned_data["expires_in_days"],
                max_uses=form.cleaned_data["max_uses"],
                allowed_domain=form.cleaned_data["allowed_domain"],
            )
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            new_link = invitation_url(
                organisation=invited.invitation.organisation, token=invited.token
            )
    return render(
        request,
        "accounts/console/invitations.html",
        _invitations_context(request, link_form=form, new_link=new_link),
        status=200 if new_link else 422,
    )


def _invitation(request: HttpRequest, pk: int) -> Invitation:
    return get_object_or_404(Invitation, pk=pk, organisation=request.organisation)  # type: ignore[attr-defined]


@role_required(Role.ADMIN)
@require_POST
def invitation_resend_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        invited = invitation_resend(actor=request.membership, invitation=_invitation(request, pk))  # type: ignore[attr-defined]
        messages.success(request, f"Invitation sent again to {invited.invitation.email}.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("console-invitations")


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def invitation_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = _invitation(request, pk)
    if request.method == "POST":
        invitation_revoke(actor=request.membership, invitation=invitation)  # type: ignore[attr-defined]
        messages.success(request, "Invitation revoked: its link no longer works.")
        return redirect("console-invitations")
    return render(
        request, "accounts/console/invitation_revoke.html", {"i": invitation, "tab": "invitations"}
    )


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def settings_view(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation  # type: ignore[attr-defined]
    initial = {
        "name": organisation.name,
        "allowed_email_domains": " ".join(organisation.allowed_email_domains or []),
    }
    form = SettingsForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                organisation_settings_update(
                    actor=request.membership,  # type: ignore[attr-defined]
                    organisation=organisation,
                    name=form.cleaned_data["name"],
                    allowed_email_domains=form.cleaned_data["allowed_email_domains"],
                )
            except ApplicationError as exc:
                form_error(form, exc)
            else:
                messages.success(request, "Settings saved.")
                return redirect("console-settings")
        status = 422
    context = {**_summary(request), "form": form, "tab": "settings"}
    return render(request, "accounts/console/settings.html", context, status=status)


def _day(raw: str, field: str, problems: list[str]) -> datetime | None:
    if not raw:
        return None
    try:
        day = datetime.strptime(raw, "%Y-%m-%d").date()
    except ValueError:
        problems.append(f"{field}: “{raw}” is not a date (YYYY-MM-DD).")
        return None
    return timezone.make_aware(datetime.combine(day, time.min))


@role_required(Role.ADMIN)
@require_GET
def audit(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation  # type: ignore[attr-defined]
    problems: list[str] = []
    since = _day(request.GET.get("since", ""), "From", problems)
    until = _day(request.GET.get("until", ""), "To", problems)
    if until is not None:
        until = until + timedelta(days=1)
    entries = audit_entries(
        organisation=organisation,
        action=request.GET.get("action", ""),
        actor=request.GET.get("actor", "").strip(),
        since=since,
        until=until,
    )
    context = {
        **_summary(request),
        "tab": "audit",
        "page": _page(request, entries),
        "actions": audit_actions(organisation=organisation),
        "filters": request.GET,
        "problems": problems,
    }
    return render(request, "accounts/console/audit.html", context, status=422 if problems else 200)


@role_required(Role.ADMIN)
@require_GET
def console_home(request: HttpRequest) -> HttpResponse:
    return redirect("console-members")
