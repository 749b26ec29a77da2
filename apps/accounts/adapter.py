"""How allauth fits the platform: sign-up on the public site only (organisations are
joined by invitation), redirects allowed to any organisation's site, and after login the
person lands where they work."""

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

from apps.accounts.selectors import organisations_of


def on_platform(url: str) -> bool:
    """A relative URL, or one on the public site or an organisation's site."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("", "http", "https") or url.startswith(("//", "\\")):
        return False
    if not parts.netloc:
        return not parts.scheme
    host = (parts.hostname or "").lower()
    return host == settings.BASE_DOMAIN or host.endswith(f".{settings.BASE_DOMAIN}")


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return getattr(request, "organisation", None) is None

    def is_safe_url(self, url: str | None) -> bool:
        return bool(url) and on_platform(str(url))

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        if getattr(request, "organisation", None) is not None:
            return reverse("home")
        organisations = organisations_of(user=request.user)  # type: ignore[arg-type]
        if not organisations:
            return reverse("organisation-new")
        return reverse("home")

    def get_signup_redirect_url(self, request: HttpRequest) -> str:
        return reverse("organisation-new")

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        super().send_mail(template_prefix, email, context)
