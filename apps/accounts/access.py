"""One way to scope every tenant view and consumer by role.

A user who is not a member of the organisation gets 404 (its existence is not revealed),
a member without the role gets 403, and a view that declares no role is refused (fail closed).
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from apps.accounts.models import Membership, Role
from apps.accounts.selectors import membership_get


class Access:
    ALLOWED = "allowed"
    ANONYMOUS = "anonymous"
    NOT_MEMBER = "not_member"
    FORBIDDEN = "forbidden"


def access_check(
    *, user: Any, organisation: Any, role: str | None
) -> tuple[str, Membership | None]:
    if role is None or role not in Role.values:
        raise ImproperlyConfigured("A tenant view must declare the least role it needs.")
    if organisation is None:
        return Access.NOT_MEMBER, None
    if not user.is_authenticated:
        return Access.ANONYMOUS, None
    membership = membership_get(user=user, organisation=organisation)
    if membership is None:
        return Access.NOT_MEMBER, None
    if not membership.has_role(role):
        return Access.FORBIDDEN, membership
    return Access.ALLOWED, membership


def role_required(role: str) -> Callable:
    """Decorates a function view of the tenant site with the least role it needs.
    A missing or unknown role fails when the module loads, not when a user arrives."""
    if role not in Role.values:
        raise ImproperlyConfigured(f"role_required needs one of {Role.values}, not {role!r}")

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            outcome, membership = access_check(
                user=request.user, organisation=getattr(request, "organisation", None), role=role
            )
            if outcome == Access.ANONYMOUS:
                return redirect_to_login(request.get_full_path())
            if outcome == Access.NOT_MEMBER:
                raise Http404("No such page")
            if outcome == Access.FORBIDDEN:
                raise PermissionDenied(f"This page needs the {role} role.")
            request.membership = membership  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        wrapped.required_role = role  # type: ignore[attr-defined]
        return wrapped

    return decorator


def open_to_visitors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Marks a tenant page anyone may open (an invitation's landing page): deliberate,
    and visible to the test that walks every tenant URL."""
    view.open_to_visitors = True  # type: ignore[attr-defined]
    return view
