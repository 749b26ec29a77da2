from django.http import HttpRequest

from apps.accounts.models import Membership, Role


def navigation(request: HttpRequest) -> dict:
    """The header's organisation switcher and whether to show the admin console."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    memberships = list(
        Membership.objects.filter(user=user)
        .select_related("organisation")
        .order_by("organisation__name")
    )
    here = getattr(request, "organisation", None)
    current = next((m for m in memberships if m.organisation_id == getattr(here, "id", None)), None)
    port = request.get_port()
    return {
        "nav_memberships": memberships,
        "nav_current": current,
        "nav_is_admin": current is not None and current.has_role(Role.ADMIN),
        "nav_is_instructor": current is not None and current.has_role(Role.INSTRUCTOR),
        "nav_port_suffix": "" if port in ("80", "443") else f":{port}",
    }
