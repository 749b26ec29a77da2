"""Instructors' writes: cohorts, their members, and the tutorials assigned to them with
due dates. (The learner's own writes are in services.py.)"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Membership, Role, User
from apps.accounts.services import audit_record
from apps.progress.models import Assignment, Cohort, CohortMember
from apps.progress.services import NotFound
from apps.tenants.errors import Conflict, ValidationFailed
from apps.tenants.models import Organisation
from apps.tutorials.selectors import tutorial_get

NAME_MAX = 120


def _name_checked(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("Give the cohort a name.", extra={"field": "name"})
    if len(name) > NAME_MAX:
        raise ValidationFailed(
            f"The name is too long ({NAME_MAX} characters at most).", extra={"field": "name"}
        )
    return name


def cohort_create(
    *, organisation: Organisation, actor: User, name: str, description: str = ""
) -> Cohort:
    name = _name_checked(name)
    try:
        with transaction.atomic():
            cohort = Cohort.objects.create(
                name=name, description=(description or "").strip()[:2000], created_by=actor
            )
            audit_record(
                organisation=organisation,
                actor=actor,
                action="cohort.create",
                target=name,
                after={"name": name},
            )
    except IntegrityError:
        raise Conflict(
            f"A cohort named “{name}” already exists.", extra={"field": "name"}
        ) from None
    return cohort


def cohort_get(*, cohort_id: int) -> Cohort:
    cohort = Cohort.objects.filter(pk=cohort_id).first()
    if cohort is None:
        raise NotFound("No such cohort.", extra={"field": "cohort"})
    return cohort


def cohort_delete(*, organisation: Organisation, actor: User, cohort_id: int) -> None:
    """Deletes a cohort, its members list and assignments (progress stays); a drill still
    running is ended first, so its scenario leaves the labs."""
    from apps.progress.drills import drill_end  # drills build on cohorts

    cohort = cohort_get(cohort_id=cohort_id)
    for drill in cohort.drills.filter(ended_at__isnull=True):
        drill_end(organisation=organisation, actor=actor, drill_id=drill.pk)
    _cohort_delete(organisation=organisation, actor=actor, cohort=cohort)


@transaction.atomic
def _cohort_delete(*, organisation: Organisation, actor: User, cohort: Cohort) -> None:
    audit_record(
        organisation=organisation,
        actor=actor,
        action="cohort.delete",
        target=cohort.name,
        before={"name": cohort.name, "members": cohort.members.count()},
    )
    cohort.delete()


def cohort_members_add(
    *, organisation: Organisation, actor: User, cohort_id: int, emails: list[str]
) -> tuple[list[User], list[str]]:
    """Adds members of the organisation by email; returns who was added and, for every
    address that could not be, why."""
    cohort = cohort_get(cohort_id=cohort_id)
    wanted = [e.strip().lower() for e in emails if e.strip()]
    if not wanted:
        raise ValidationFailed("Enter at least one email address.", extra={"field": "emails"})
    members = {
        m.user.email.lower(): m.user
        for m in Membership.objects.filter(
            organisation=organisation, user__email__in=wanted
        ).select_related("user")
    }
    added, problems = [], []
    with transaction.atomic():
        for email in dict.fromkeys(wanted):
            user = members.get(email)
            if user is None:
                problems.append(f"{email}: not a member of {organisation.name}")
                continue
            _, created = CohortMember.objects.get_or_create(cohort=cohort, learner=user)
            if created:
                added.append(user)
            else:
                problems.append(f"{email}: already in the cohort")
        if added:
            audit_record(
                organisation=organisation,
                actor=actor,
                action="cohort.members_add",
                target=cohort.name,
                after={"added": [u.email for u in added]},
            )
    return added, problems


@transaction.atomic
def cohort_member_remove(
    *, organisation: Organisation, actor: User, cohort_id: int, learner_id: int
) -> None:
    cohort = cohort_get(cohort_id=cohort_id)
    removed, _ = CohortMember.objects.filter(cohort=cohort, learner_id=learner_id).delete()
    if not removed:
        raise NotFound("That person is not in this cohort.", extra={"field": "learner"})
    audit_record(
        organisation=organisation,
        actor=actor,
        action="cohort.member_remove",
        target=cohort.name,
        before={"learner": learner_id},
    )


def assignment_create(
    *,
    organisation: Organisation,
    actor: User,
    cohort_id: int,
    tutorial_slug: str,
    due_at: datetime | None,
) -> Assignment:
    cohort = cohort_get(cohort_id=cohort_id)
    found = tutorial_get(slug=tutorial_slug)
    if found is None:
        raise ValidationFailed(f"No tutorial “{tutorial_slug}”.", extra={"field": "tutorial"})
    if due_at is not None and due_at < timezone.now():
        raise ValidationFailed("The due date is in the past.", extra={"field": "due_at"})
    try:
        with transaction.atomic():
            assignment = Assignment.objects.create(
                cohort=cohort,
                tutorial_slug=tutorial_slug,
                own=found[1],
                due_at=due_at,
                assigned_by=actor,
            )
            audit_record(
                organisation=organisation,
                actor=actor,
                action="cohort.assign",
                target=cohort.name,
                after={"tutorial": tutorial_slug, "due_at": due_at.isoformat() if due_at else None},
            )
    except IntegrityError:
        raise Conflict(
            f"“{found[0].title}” is already assigned to this cohort.",
            extra={"field": "tutorial"},
        ) from None
    return assignment


@transaction.atomic
def assignment_remove(
    *, organisation: Organisation, actor: User, cohort_id: int, assignment_id: int
) -> None:
    assignment = Assignment.objects.filter(pk=assignment_id, cohort_id=cohort_id).first()
    if assignment is None:
        raise NotFound("No such assignment.", extra={"field": "assignment"})
    audit_record(
        organisation=organisation,
        actor=actor,
        action="cohort.unassign",
        target=str(cohort_id),
        before={"tutorial": assignment.tutorial_slug},
    )
    assignment.delete()


def instructor_of(organisation: Organisation, user: User) -> bool:
    membership = Membership.objects.filter(organisation=organisation, user=user).first()
    return membership is not None and membership.has_role(Role.INSTRUCTOR)
