"""Lab pages: the learner's labs and the start form, and the live lab page."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.access import role_required
from apps.accounts.models import Role
from apps.scenarios.models import ACTIVE_STATES, LabSession
from apps.scenarios.selectors import lab_page_context
from apps.scenarios.services import lab_session_extend, lab_session_start, lab_session_stop
from apps.tenants.errors import ApplicationError
from sandbox.catalog import SCENARIOS


@role_required(Role.LEARNER)
@require_GET
def labs(request: HttpRequest) -> HttpResponse:
    membership = request.membership  # type: ignore[attr-defined]
    mine = LabSession.objects.filter(learner=request.user)  # type: ignore[misc]
    watching = None
    if membership.has_role(Role.INSTRUCTOR):
        watching = LabSession.objects.filter(state__in=ACTIVE_STATES).exclude(
            learner=request.user  # type: ignore[misc]
        )
    context = {
        "page": Paginator(mine, 20).get_page(request.GET.get("page")),
        "active": mine.filter(state__in=ACTIVE_STATES).first(),
        "watching": watching,
        "scenarios": sorted(SCENARIOS.values(), key=lambda s: (s.category, s.title)),
    }
    return render(request, "scenarios/labs.html", context)


@role_required(Role.LEARNER)
@require_POST
def lab_start(request: HttpRequest) -> HttpResponse:
    slug = request.POST.get("scenario", "")
    try:
        session = lab_session_start(
            organisation=request.organisation,  # type: ignore[attr-defined]
            learner=request.user,  # type: ignore[arg-type]
            scenario_set=slug or "free-play",
            scenarios=[slug] if slug else [],
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("labs")
    return redirect("lab", session_id=session.pk)


def _visible(request: HttpRequest, session_id: int) -> tuple[LabSession, bool]:
    """The session and whether this person drives it (else an instructor watching)."""
    session = LabSession.objects.filter(pk=session_id).first()
    if session is None:
        raise Http404("No such lab")
    driver = session.learner_id == request.user.pk
    if not driver and not request.membership.has_role(Role.INSTRUCTOR):  # type: ignore[attr-defined]
        raise PermissionDenied("Only the learner and the organisation's instructors see this lab.")
    return session, driver


@role_required(Role.LEARNER)
@require_GET
def lab(request: HttpRequest, session_id: int) -> HttpResponse:
    session, driver = _visible(request, session_id)
    return render(request, "scenarios/lab.html", lab_page_context(session=session, driver=driver))


@role_required(Role.LEARNER)
@require_POST
def lab_stop(request: HttpRequest, session_id: int) -> HttpResponse:
    session, driver = _visible(request, session_id)
    if not driver:
        raise PermissionDenied("Only the learner can stop their lab.")
    lab_session_stop(session_id=session.pk, learner=request.user)  # type: ignore[arg-type]
    messages.success(request, "The lab is stopping.")
    return redirect("lab", session_id=session.pk)


@role_required(Role.LEARNER)
@require_POST
def lab_extend(request: HttpRequest, session_id: int) -> HttpResponse:
    session, driver = _visible(request, session_id)
    if not driver:
        raise PermissionDenied("Only the learner can extend their lab.")
    try:
        lab_session_extend(session_id=session.pk, learner=request.user, seconds=1800)  # type: ignore[arg-type]
        messages.success(request, "Thirty more minutes.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("lab", session_id=session.pk)
