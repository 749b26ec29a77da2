"""DRF's default permission: every tenant API view declares the least role it needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured
from rest_framework.exceptions import NotAuthenticated, NotFound
from rest_framework.permissions import BasePermission

from apps.accounts.access import Access, access_check

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


class RolePermission(BasePermission):
    """DRF's default permission: an API view declares `required_role`, or nobody gets in.

    On an organisation's site: anonymous -> 401/403, not a member -> 404, member without
    the role -> 403. A view on the public site sets its own permission classes.
    """

    def has_permission(self, request: Request, view: APIView) -> bool:
        role = getattr(view, "required_role", None)
        if role is None:
            raise ImproperlyConfigured(f"{type(view).__name__} declares no required_role")
        outcome, membership = access_check(
            user=request.user, organisation=getattr(request, "organisation", None), role=role
        )
        if outcome == Access.ANONYMOUS:
            raise NotAuthenticated()
        if outcome == Access.NOT_MEMBER:
            raise NotFound()
        if outcome == Access.FORBIDDEN:
            return False
        request.membership = membership  # type: ignore[attr-defined]
        return True
