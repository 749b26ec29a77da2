"""Settings shared by every environment. Anything that differs between machines comes
from the environment, with a safe default for development."""

import os
import sys
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


INSECURE_DEFAULT_SECRET_KEY = "django-insecure-dev-only-change-me"  # noqa: S105
SECRET_KEY = os.environ.get("SECRET_KEY", INSECURE_DEFAULT_SECRET_KEY)
DEBUG = env_bool("DEBUG", False)

# Organisations live on subdomains of BASE_DOMAIN; the bare domain is the public site.
# A two-label name under .localhost resolves to loopback in browsers and lets one cookie
# span every organisation.
BASE_DOMAIN = os.environ.get("BASE_DOMAIN", "lab.localhost").lower().strip(".")
PUBLIC_PORT = os.environ.get("PUBLIC_PORT", "8000")
ALLOWED_HOSTS = [BASE_DOMAIN, f".{BASE_DOMAIN}", "localhost", "127.0.0.1", "[::1]"] + [
    h for h in os.environ.get("EXTRA_ALLOWED_HOSTS", "").split(",") if h
]

# ---------------------------------------------------------------- tenancy
SHARED_APPS = [
    "django_tenants",
    "apps.tenants",
    "apps.accounts",
    "allauth",
    "allauth.account",
    "rest_framework.authtoken",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "django_prometheus",
    "apps.tutorials",  # the platform's tutorials; organisations' own live in their schema
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "apps.scenarios",
    "apps.tutorials",
    "apps.progress",
]
INSTALLED_APPS = list(SHARED_APPS) + [a for a in TENANT_APPS if a not in SHARED_APPS]

TENANT_MODEL = "tenants.Organisation"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
ROOT_URLCONF = "config.urls_tenant"
# A new organisation is a copy of this migrated schema, not a run of every migration.
TENANT_TEMPLATE_SCHEMA = "tenant_template"
# Set search_path once per request/task, not on every cursor.
TENANT_LIMIT_SET_CALLS = True
GET_EXECUTOR_FUNCTION = "apps.tenants.migration.get_executor"
TENANT_MULTIPROCESSING_MAX_PROCESSES = env_int("TENANT_MIGRATION_PROCESSES", 2)
TENANT_MULTIPROCESSING_CHUNKS = 4

DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sdlab")
DATABASES = {
    "default": {
        **dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60)),
        # django-tenants routes schemas; django-prometheus counts queries underneath it.
        "ENGINE": "django_tenants.postgresql_backend",
    }
}
ORIGINAL_BACKEND = "django_prometheus.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------- redis, cache, channels
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # Cache keys carry the schema name, so organisations never share an entry.
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "sdlab"),
    }
}
CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 times sockets out after 5 s, the same 5 s channels_redis blocks
            # waiting for a message: an idle WebSocket's consumer would crash. Its pool of
            # 100 connections fails at once when a thousand viewers leave together.
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": 30,
                    "max_connections": env_int("CHANNELS_MAX_CONNECTIONS", 1000),
                }
            ],
            "prefix": os.environ.get("CHANNELS_PREFIX", "sdlab:channels"),
        },
    }
}

# ---------------------------------------------------------------- celery
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "sdlab")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "platform-heartbeat": {
        "task": "apps.tenants.tasks.platform_heartbeat",
        "schedule": 30.0,
    },
    "lab-warm-pool": {
        "task": "apps.scenarios.tasks.lab_pool_fill_task",
        "schedule": 10.0,
    },
    "lab-sessions-sweep": {
        "task": "apps.scenarios.tasks.lab_sessions_sweep_task",
        "schedule": float(os.environ.get("LAB_SWEEP_SECONDS", "15")),
    },
}

# ---------------------------------------------------------------- lab sessions
SANDBOX_BACKEND = os.environ.get("SANDBOX_BACKEND", "local")  # local | docker | kubernetes
SANDBOX_ROOT = os.environ.get("SANDBOX_ROOT", "/tmp/sdlab-sandboxes")  # noqa: S108
# The interpreter the local backend runs sandboxes with (one with the sandbox's packages).
SANDBOX_PYTHON = os.environ.get("SANDBOX_PYTHON") or sys.executable
LAB_SESSION_TTL_S = env_int("LAB_SESSION_TTL_S", 3600)
LAB_SESSION_WARN_BEFORE_S = env_int("LAB_SESSION_WARN_BEFORE_S", 300)
# A session starting for longer than this has lost its worker: failed, its sandbox reaped.
LAB_PROVISION_TIMEOUT_S = env_int("LAB_PROVISION_TIMEOUT_S", 120)
# Ready sandboxes kept per scenario set ("free-play=2,retry-storm=1"); none by default.
LAB_WARM_POOL = os.environ.get("LAB_WARM_POOL", "")
# Called with (schema, session id, frame) for every frame the relay sends.
LAB_FRAME_LISTENERS = ["apps.progress.watch.frame_seen"]
# A learner is "stuck" with no progress for this long, or this many wrong answers in a step.
PROGRESS_STUCK_AFTER_S = env_int("PROGRESS_STUCK_AFTER_S", 15 * 60)
PROGRESS_STUCK_ATTEMPTS = env_int("PROGRESS_STUCK_ATTEMPTS", 3)

# ---------------------------------------------------------------- django
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "apps.tenants.middleware.OrganisationMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.tenants.context_processors.organisation",
                "apps.accounts.context_processors.navigation",
            ],
        },
    }
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "account_login"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# ---------------------------------------------------------------- identity (allauth)
# Every site (public and each organisation's) serves the same account pages; sign-up is
# open on the public site only, organisations are joined by invitation.
ACCOUNT_ADAPTER = "apps.accounts.adapter.AccountAdapter"
ACCOUNT_FORMS = {"login": "apps.accounts.forms.LoginForm"}
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
# A code typed into the page that asked for it: works across subdomains and devices.
ACCOUNT_EMAIL_VERIFICATION_BY_CODE_ENABLED = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PRESERVE_USERNAME_CASING = False
# Failed logins are limited per address and per client, sign-ups and resets per client.
ACCOUNT_RATE_LIMITS = {
    "login_failed": os.environ.get("LOGIN_FAILED_RATE", "10/m/ip,5/5m/key"),
    "signup": os.environ.get("SIGNUP_RATE", "20/m/ip"),
    "reset_password": "20/m/ip,5/m/key",
    "confirm_email": "1/3m/key",
}
DEFAULT_FROM_EMAIL = os.environ.get(
    "DEFAULT_FROM_EMAIL", "Systems Design Lab <noreply@lab.localhost>"
)

# One login spans every organisation: the session cookie is set for .BASE_DOMAIN.
SESSION_COOKIE_DOMAIN = os.environ.get("SESSION_COOKIE_DOMAIN", f".{BASE_DOMAIN}")
# The CSRF cookie stays host-only, and no other origin is trusted: a page on one
# organisation's site cannot post to another's (forms post to their own site only).
CSRF_COOKIE_DOMAIN = None
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS: list = [
    BASE_DIR / "config" / "static",
    # installed from the npm registry by `make install` (package.json), never committed
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("vendor/uplot", BASE_DIR / "node_modules" / "uplot" / "dist"),
]
# collectstatic writes here in production images; development serves from the finders.
STATIC_ROOT = os.environ.get("STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    # Fail closed: a tenant API view that declares no required_role refuses everyone.
    "DEFAULT_PERMISSION_CLASSES": ["apps.accounts.permissions.RolePermission"],
    "EXCEPTION_HANDLER": "apps.tenants.errors.api_exception_handler",
    # Documents each view's error answers too; see apps/tenants/openapi.py.
    "DEFAULT_SCHEMA_CLASS": "apps.tenants.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {"anon": os.environ.get("API_ANON_RATE", "120/minute")},
}

# The committed schemas (config/openapi/) are written by `make openapi` and checked by
# `make test`; nothing serves them at run time.
SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "Systems Design Lab API",
    "DESCRIPTION": (
        "Learn distributed-systems design by breaking real systems on purpose. "
        "The public site and each organisation's site have their own API; every error "
        'answers {"message": ..., "extra": {...}}.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {
        "Role": "apps.accounts.models.Role",
        "LinkRole": "apps.accounts.models.LINK_ROLES",
    },
    "COMPONENT_SPLIT_REQUEST": True,
}

# ---------------------------------------------------------------- telemetry
PROMETHEUS_EXPORT_MIGRATIONS = False
# none | console | otlp. OTLP sends to OTEL_EXPORTER_OTLP_ENDPOINT (standard OTel variable).
OTEL_TRACES_EXPORTER = os.environ.get("OTEL_TRACES_EXPORTER", "none")
OTEL_SERVICE_NAME = os.environ.get("OTEL_SERVICE_NAME", "sdlab-web")
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")  # json | text

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "apps.tenants.logging.RequestContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": (
                "%(asctime)s %(levelname)s %(name)s %(message)s %(tenant)s %(trace_id)s %(span_id)s"
            ),
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {
            "format": "%(asctime)s %(levelname)s [%(tenant)s %(trace_id)s] %(name)s: %(message)s"
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django_tenants": {"level": "WARNING"},
    },
}

# ---------------------------------------------------------------- optional integrations
# Each optional integration has its own switch; unset means off.
# Mail goes to the console in development, to SMTP when EMAIL_HOST is set.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
GRAFANA_URL = os.environ.get("GRAFANA_URL", "")
GRAFANA_TOKEN = os.environ.get("GRAFANA_TOKEN", "")  # a viewer service-account token
GRAFANA_LAB_DASHBOARD = os.environ.get("GRAFANA_LAB_DASHBOARD", "sdlab-lab-session")
# With a token set, /metrics answers only scrapers presenting it (Authorization: Bearer ...).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# host:port Prometheus scrapes sandboxes through (the platform's own address as it sees
# it); unset: the host the discovery request came to.
PROMETHEUS_SD_TARGET = os.environ.get("PROMETHEUS_SD_TARGET", "")
