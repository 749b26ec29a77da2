"""The learner's pages: their dashboard, and a tutorial run with its guide beside the lab.

The guide (steps, checks, quizzes, hints) is its own fragment: the page refreshes it when
the lab socket says a check passed and when the next timed hint is due, so a check shows
as passed the moment it holds, with no button.
"""

import time

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.access import role_required
from apps.accounts.models import Role
from apps.progress.drills import drill_detect
from apps.progress.selectors import enrolment_of, guide_read, learner_dashboard
from apps.progress.services import (
    enrolment_create,
    enrolment_steps_sync,
    quiz_answer_submit,
    tutorial_lab_start,
)
from apps.scenarios.selectors import lab_page_context
from apps.tenants.errors import ApplicationError


@role_required(Role.LEARNER)
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    board = learner_dashboard(learner=request.user)  # type: ignore[arg-type]
    return render(request, "progress/dashboard.html", {"board": board})


@role_required(Role.LEARNER)
@require_POST
def enrol(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        enrolment_create(learner=request.user, slug=slug)  # type: ignore[arg-type]
    except ApplicationError as exc:
        if exc.status_code == 404:
            raise Http404(exc.message) from None
        messages.error(request, exc.message)
        return redirect("tutorial", slug=slug)
    return redirect("learn", slug=slug)


FEEDBACK_S = 120  # a quiz's feedback stays on the guide this long, through its refreshes


def _guide_context(request: HttpRequest, slug: str) -> dict:
    enrolment = enrolment_of(learner=request.user, slug=slug)  # type: ignore[arg-type]
    if enrolment is not None:
        enrolment_steps_sync(enrolment=enrolment)  # the content may have changed since
    guide = guide_read(slug=slug, learner=request.user)  # type: ignore[arg-type]
    if guide is None:
        raise Http404("No such tutorial")
    answered = request.session.get(f"answered:{slug}")
    if answered and time.time() - answered.get("at", 0) > FEEDBACK_S:
        answered = None
    return {"guide": guide, "answered": answered}


@role_required(Role.LEARNER)
@require_GET
def learn(request: HttpRequest, slug: str) -> HttpResponse:
    context = _guide_context(request, slug)
    enrolment = context["guide"].enrolment
    if enrolment is None:
        return redirect("tutorial", slug=slug)
    session = enrolment.lab_session
    if session is None:
        return render(request, "progress/learn.html", context)
    context.update(lab_page_context(session=session, driver=True))
    return render(request, "progress/learn_lab.html", context)


@role_required(Role.LEARNER)
@require_GET
def guide(request: HttpRequest, slug: str) -> HttpResponse:
    return render(request, "progress/_guide.html", _guide_context(request, slug))


@role_required(Role.LEARNER)
@require_POST
def lab(request: HttpRequest, slug: str) -> HttpResponse:
    enrolment = enrolment_of(learner=request.user, slug=slug)  # type: ignore[arg-type]
    if enrolment is None:
        raise Http404("Enrol in the tutorial first")
    try:
        tutorial_lab_start(
            organisation=request.organisation,  # type: ignore[attr-defined]
            enrolment=enrolment,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("learn", slug=slug)


def _whole(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


@role_required(Role.LEARNER)
@require_POST
def answer(request: HttpRequest, slug: str) -> HttpResponse:
    """A quiz answer. With htmx the guide fragment comes back with the explanations; without
    JavaScript the page is shown again with them."""
    enrolment = enrolment_of(learner=request.user, slug=slug)  # type: ignore[arg-type]
    if enrolment is None:
        raise Http404("Enrol in the tutorial first")
    step, check = request.POST.get("step", ""), request.POST.get("check", "")
    feedback: dict = {"step": step, "check": check, "at": time.time()}
    raw = [n for n in request.POST.getlist("choice") if n.strip()]  # blank: nothing chosen
    odd = next((n for n in raw if _whole(n) is None), None)
    if odd is not None:  # not an answer at all: refused here, and not counted as a wrong one
        feedback.update(error=f"“{odd[:40]}” is not one of the answers: choose one of them.")
    else:
        try:
            outcome = quiz_answer_submit(
                learner=request.user,  # type: ignore[arg-type]
                enrolment_id=enrolment.pk,
                step_slug=step,
                check_id=check,
                chosen=[int(n) for n in raw],
            )
            feedback.update(right=outcome.right, explanations=outcome.explanations)
        except ApplicationError as exc:
            if exc.status_code == 404:
                raise Http404(exc.message) from None
            feedback.update(error=exc.message)
    # Kept in the session: the guide refreshes itself when progress moves (this answer's
    # own event among them), and the feedback must survive that.
    request.session[f"answered:{slug}"] = feedback
    if request.headers.get("HX-Request"):
        return render(request, "progress/_guide.html", _guide_context(request, slug))
    return redirect("learn", slug=slug)


@role_required(Role.LEARNER)
@require_POST
def drill_detected(request: HttpRequest, run_id: int) -> HttpResponse:
    """The learner says they found the incident in their lab (a button on the lab page,
    or on their dashboard without JavaScript)."""
    try:
        run = drill_detect(learner=request.user, run_id=run_id)  # type: ignore[arg-type]
    except ApplicationError as exc:
        if exc.status_code == 404:
            raise Http404(exc.message) from None
        if request.headers.get("Accept", "").startswith("application/json"):
            return JsonResponse(
                {"message": exc.message, "extra": exc.extra}, status=exc.status_code
            )
        messages.error(request, exc.message)
        return redirect("learn-dashboard")
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse(
            {"detected_at": run.detected_at.isoformat() if run.detected_at else None}
        )
    messages.success(request, "Noted. Now find the cause and mitigate it.")
    return redirect("learn-dashboard")
