"""Host name -> organisation, shared by the HTTP middleware and the WebSocket middleware."""

from dataclasses import dataclass

from django.conf import settings

from apps.tenants.models import Domain, Organisation


@dataclass(frozen=True)
class HostMatch:
    organisation: Organisation | None
    # True when the host is an organisation address that matches none (answer 404).
    unknown_organisation: bool = False


def hostname_of(host: str) -> str:
    """`Demo.Lab.Localhost:8000` -> `demo.lab.localhost` (IPv6 literals keep their brackets)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]")[0] + "]"
    name = host.rsplit(":", 1)[0] if ":" in host else host
    return name.rstrip(".")  # "demo.lab.localhost." is the same name as without the dot


def organisation_for_host(host: str) -> HostMatch:
    """Resolves a host: an organisation's domain, or the public site, or an unknown org."""
    hostname = hostname_of(host)
    domain = Domain.objects.select_related("tenant").filter(domain=hostname).first()
    if domain is not None:
        return HostMatch(organisation=domain.tenant)
    base = settings.BASE_DOMAIN
    if hostname.endswith("." + base) and hostname != base:
        return HostMatch(organisation=None, unknown_organisation=True)
    # The bare domain, loopback and internal names (probes, Prometheus) see the public site.
    return HostMatch(organisation=None)
