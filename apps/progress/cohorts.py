"""Instructors' pages: cohorts, their members and assignments, and a cohort's progress on
a tutorial (matrix, funnel, stuck learners, time per step, CSV), kept live by the
organisation's progress feed (ws/progress/)."""

from __future__ import annotations

from datetime import datetime, time

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.access import role_required
from apps.accounts.forms import form_error
from apps.accounts.models import Role
from apps.progress.drills import drill_end, drill_start
from apps.progress.models import Cohort, Drill
from apps.progress.reports import (
    FILTERS,
    cohort_assignments,
    cohort_learners,
    cohort_report,
    cohort_report_csv,
    cohorts_list,
)
from apps.progress.services import NotFound
from apps.progress.teaching import (
    assignment_create,
    assignment_remove,
    cohort_create,
    cohort_delete,
    cohort_get,
    cohort_member_remove,
    cohort_members_add,
)
from apps.tenants.errors import ApplicationError
from apps.tutorials.selectors import tutorials_visible
from sandbox.catalog import SCENARIOS

ROWS_PER_PAGE = 50


class CohortForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class MembersForm(forms.Form):
    emails = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Members' email addresses, one per line or separated by commas.",
    )


class AssignmentForm(forms.Form):
    tutorial = forms.ChoiceField()
    due_on = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Due on"
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        visible = tutorials_visible()
        self.fields["tutorial"].choices = [  # type: ignore[attr-defined]
            (t.slug, t.title) for t in [*visible["own"], *visible["platform"]]
        ]

    def due_at(self) -> datetime | None:
        day = self.cleaned_data.get("due_on")
        if day is None:
            return None
        return timezone.make_aware(datetime.combine(day, time(23, 59)))


SCENARIO_CHOICES: list[tuple[str, str]] = sorted(
    ((s.slug, s.title) for s in SCENARIOS.values()), key=lambda choice: choice[1]
)


class DrillForm(forms.Form):
    scenario = forms.ChoiceField(choices=SCENARIO_CHOICES)
    parameters = forms.JSONField(
        required=False,
        initial=dict,
        help_text='Optional, as JSON: {"delay_ms": 400}. Left empty, the defaults.',
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ReportFilterForm(forms.Form):
    """The matrix's filter: an unknown one is refused, not read as "all"."""

    show = forms.ChoiceField(
        choices=[(f, f) for f in FILTERS],
        error_messages={
            "invalid_choice": f"“%(value)s” is not a filter: choose one of {', '.join(FILTERS)}.",
            "required": f"Choose a filter: one of {', '.join(FILTERS)}.",
        },
    )


def _cohort(cohort_id: int) -> Cohort:
    try:
        return cohort_get(cohort_id=cohort_id)
    except NotFound:
        raise Http404("No such cohort") from None


@role_required(Role.INSTRUCTOR)
@require_http_methods(["GET", "POST"])
def cohorts(request: HttpRequest) -> HttpResponse:
    form = CohortForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            cohort = cohort_create(
                organisation=request.organisation,  # type: ignore[attr-defined]
                actor=request.user,  # type: ignore[arg-type]
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Cohort “{cohort.name}” created.")
            return redirect("cohort", cohort_id=cohort.pk)
    search = request.GET.get("q", "").strip()[:100]
    page = Paginator(cohorts_list(search=search), 25).get_page(request.GET.get("page"))
    status = 422 if request.method == "POST" else 200
    return render(
        request, "progress/cohorts.html", {"form": form, "page": page, "q": search}, status=status
    )


def _cohort_context(request: HttpRequest, cohort: Cohort, **forms_: forms.Form) -> dict:
    return {
        "cohort": cohort,
        "learners": cohort_learners(cohort=cohort),
        "assignments": cohort_assignments(cohort=cohort),
        "members_form": forms_.get("members_form") or MembersForm(),
        "assignment_form": forms_.get("assignment_form") or AssignmentForm(),
        "drill_form": forms_.get("drill_form") or DrillForm(),
        "drills": Drill.objects.filter(cohort=cohort)[:20],
    }


@role_required(Role.INSTRUCTOR)
@require_GET
def cohort(request: HttpRequest, cohort_id: int) -> HttpResponse:
    return render(request, "progress/cohort.html", _cohort_context(request, _cohort(cohort_id)))


@role_required(Role.INSTRUCTOR)
@require_POST
def cohort_members(request: HttpRequest, cohort_id: int) -> HttpResponse:
    group = _cohort(cohort_id)
    form = MembersForm(request.POST)
    if form.is_valid():
        emails = form.cleaned_data["emails"].replace(",", "\n").splitlines()
        try:
            added, problems = cohort_members_add(
                organisation=request.organisation,  # type: ignore[attr-defined]
                actor=request.user,  # type: ignore[arg-type]
                cohort_id=group.pk,
                emails=emails,
            )
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            if added:
                messages.success(request, f"Added {len(added)} to {group.name}.")
            for problem in problems:
                messages.warning(request, problem)
            return redirect("cohort", cohort_id=group.pk)
    return render(
        request,
        "progress/cohort.html",
        _cohort_context(request, group, members_form=form),
        status=422,
    )


@role_required(Role.INSTRUCTOR)
@require_POST
def cohort_member_remove_view(
    request: HttpRequest, cohort_id: int, learner_id: int
) -> HttpResponse:
    group = _cohort(cohort_id)
    try:
        cohort_member_remove(
            organisation=request.organisation,  # type: ignore[attr-defined]
            actor=request.user,  # type: ignore[arg-type]
            cohort_id=group.pk,
            learner_id=learner_id,
        )
    except NotFound:
        raise Http404("That person is not in this cohort") from None
    messages.success(request, "Removed from the cohort; their progress is kept.")
    return redirect("cohort", cohort_id=group.pk)


@role_required(Role.INSTRUCTOR)
@require_POST
def cohort_assign(request: HttpRequest, cohort_id: int) -> HttpResponse:
    group = _cohort(cohort_id)
    form = AssignmentForm(request.POST)
    if form.is_valid():
        try:
            assignment_create(
                organisation=request.organisation,  # type: ignore[attr-defined]
                actor=request.user,  # type: ignore[arg-type]
                cohort_id=group.pk,
                tutorial_slug=form.cleaned_data["tutorial"],
                due_at=form.due_at(),
            )
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            messages.success(request, "Tutorial assigned.")
            return redirect("cohort", cohort_id=group.pk)
    return render(
        request,
        "progress/cohort.html",
        _cohort_context(request, group, assignment_form=form),
        status=422,
    )


@role_required(Role.INSTRUCTOR)
@require_POST
def cohort_unassign(request: HttpRequest, cohort_id: int, assignment_id: int) -> HttpResponse:
    group = _cohort(cohort_id)
    try:
        assignment_remove(
            organisation=request.organisation,  # type: ignore[attr-defined]
            actor=request.user,  # type: ignore[arg-type]
            cohort_id=group.pk,
            assignment_id=assignment_id,
        )
    except NotFound:
        raise Http404("No such assignment") from None
    messages.success(request, "Assignment removed; learners' progress is kept.")
    return redirect("cohort", cohort_id=group.pk)


@role_required(Role.INSTRUCTOR)
@require_http_methods(["GET", "POST"])
def cohort_delete_view(request: HttpRequest, cohort_id: int) -> HttpResponse:
    group = _cohort(cohort_id)
    if request.method == "POST":
        cohort_delete(
            organisation=request.organisation,  # type: ignore[attr-defined]
            actor=request.user,  # type: ignore[arg-type]
            cohort_id=group.pk,
        )
        messages.success(request, f"Cohort “{group.name}” deleted; learners' progress is kept.")
        return redirect("cohorts")
    return render(request, "progress/cohort_delete.html", {"cohort": group})


def _report_context(request: HttpRequest, cohort_id: int, slug: str) -> dict:
    group = _cohort(cohort_id)
    report = cohort_report(cohort=group, tutorial_slug=slug)
    if report is None:
        raise Http404("No such tutorial")
    form = ReportFilterForm({"show": request.GET.get("show", "all")})
    search = request.GET.get("q", "").strip()[:100]
    if form.is_valid():
        show = form.cleaned_data["show"]
        rows = report.filtered(show, search)
    else:  # refused: no rows rather than every row under a filter the instructor did not ask for
        show, rows = "", []
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    return {
        "cohort": group,
        "report": report,
        "page": page,
        "show": show,
        "q": search,
        "filters": FILTERS,
        "filter_form": form,
    }


def _report_render(request: HttpRequest, template: str, cohort_id: int, slug: str) -> HttpResponse:
    context = _report_context(request, cohort_id, slug)
    status = 422 if context["filter_form"].errors else 200
    return render(request, template, context, status=status)


@role_required(Role.INSTRUCTOR)
@require_GET
def cohort_progress(request: HttpRequest, cohort_id: int, slug: str) -> HttpResponse:
    return _report_render(request, "progress/report.html", cohort_id, slug)


@role_required(Role.INSTRUCTOR)
@require_GET
def cohort_progress_matrix(request: HttpRequest, cohort_id: int, slug: str) -> HttpResponse:
    return _report_render(request, "progress/_matrix.html", cohort_id, slug)


@role_required(Role.INSTRUCTOR)
@require_GET
def cohort_progress_csv(request: HttpRequest, cohort_id: int, slug: str) -> HttpResponse:
    group = _cohort(cohort_id)
    report = cohort_report(cohort=group, tutorial_slug=slug)
    if report is None:
        raise Http404("No such tutorial")
    response = HttpResponse(cohort_report_csv(report), content_type="text/csv; charset=utf-8")
    filename = f"{group.pk}-{slug}-progress.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@role_required(Role.INSTRUCTOR)
@require_POST
def cohort_drill_start(request: HttpRequest, cohort_id: int) -> HttpResponse:
    group = _cohort(cohort_id)
    form = DrillForm(request.POST)
    if form.is_valid():
        try:
            drill = drill_start(
                organisation=request.organisation,  # type: ignore[attr-defined]
                actor=request.user,  # type: ignore[arg-type]
                cohort_id=group.pk,
                scenario=form.cleaned_data["scenario"],
                parameters=form.cleaned_data["parameters"] or {},
            )
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            messages.success(request, "Drill started in every running lab of the cohort.")
            return redirect("cohort-drill", cohort_id=group.pk, drill_id=drill.pk)
    return render(
        request,
        "progress/cohort.html",
        _cohort_context(request, group, drill_form=form),
        status=422,
    )


def _drill_context(cohort_id: int, drill_id: int) -> dict:
    group = _cohort(cohort_id)
    drill = Drill.objects.filter(pk=drill_id, cohort=group).first()
    if drill is None:
        raise Http404("No such drill")
    runs = list(drill.runs.all())
    emails = {u.pk: u.email for u in cohort_learners(cohort=group)}
    return {
        "cohort": group,
        "drill": drill,
        "scenario": SCENARIOS[drill.scenario].title if drill.scenario in SCENARIOS else "",
        "runs": sorted(
            ((emails.get(r.learner_id, f"former member {r.learner_id}"), r) for r in runs),
            key=lambda pair: pair[0],
        ),
    }


@role_required(Role.INSTRUCTOR)
@require_GET
def cohort_drill(request: HttpRequest, cohort_id: int, drill_id: int) -> HttpResponse:
    return render(request, "progress/drill.html", _drill_context(cohort_id, drill_id))


@role_required(Role.INSTRUCTOR)
@require_GET
def cohort_drill_runs(request: HttpRequest, cohort_id: int, drill_id: int) -> HttpResponse:
    return render(request, "progress/_drill_runs.html", _drill_context(cohort_id, drill_id))


@role_required(Role.INSTRUCTOR)
@require_POST
def cohort_drill_end(request: HttpRequest, cohort_id: int, drill_id: int) -> HttpResponse:
    context = _drill_context(cohort_id, drill_id)
    drill_end(
        organisation=request.organisation,  # type: ignore[attr-defined]
        actor=request.user,  # type: ignore[arg-type]
        drill_id=context["drill"].pk,
    )
    messages.success(request, "Drill ended: its scenario has left the labs.")
    return redirect("cohort-drill", cohort_id=cohort_id, drill_id=drill_id)
