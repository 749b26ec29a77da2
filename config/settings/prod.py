"""Production settings: refuse to start with an unsafe value, naming it."""

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *
from .base import INSECURE_DEFAULT_SECRET_KEY, env_bool

DEBUG = env_bool("DEBUG", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
SECURE_CONTENT_TYPE_NOSNIFF = True
STATIC_ROOT = os.environ.get("STATIC_ROOT", str(BASE_DIR / "staticfiles"))
WHITENOISE_USE_FINDERS = False
STORAGES["staticfiles"]["BACKEND"] = "whitenoise.storage.CompressedManifestStaticFilesStorage"


def unsafe_settings(values: dict) -> list[str]:
    """Names every unsafe setting, with why, so an operator can fix them in one go."""
    problems = []
    if values["DEBUG"]:
        problems.append("DEBUG must be off in production")
    secret = values["SECRET_KEY"]
    if (
        secret == INSECURE_DEFAULT_SECRET_KEY
        or len(secret) < 40
        or secret.startswith("django-insecure")
    ):
        problems.append("SECRET_KEY must be set to a random value of at least 40 characters")
    if not values["SESSION_COOKIE_SECURE"]:
        problems.append("SESSION_COOKIE_SECURE must be on in production")
    if not values["CSRF_COOKIE_SECURE"]:
        problems.append("CSRF_COOKIE_SECURE must be on in production")
    if not values["METRICS_TOKEN"]:
        problems.append("METRICS_TOKEN must be set: /metrics is otherwise open on every host")
    if values["BASE_DOMAIN"].endswith("localhost"):
        problems.append("BASE_DOMAIN must be a real domain in production, not *.localhost")
    return problems


_problems = unsafe_settings(globals())
if _problems:
    raise ImproperlyConfigured("Unsafe production settings: " + "; ".join(_problems))
