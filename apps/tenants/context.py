"""The schema a piece of work runs for, for logs and traces (contextvars follow async code)."""

from contextvars import ContextVar

current_tenant: ContextVar[str] = ContextVar("current_tenant", default="public")
