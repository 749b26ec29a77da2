"""Grafana panels of a lab session, embedded in the lab page through the platform.

With `GRAFANA_URL` set, the lab page frames `/labs/<id>/grafana/d-solo/...`. This proxy
lets through only what a session's embed needs, to a viewer who may see that session:

- panel pages (`d-solo/<dashboard>`) with `var-session` and `var-organisation` forced to
  this session: a `var-session=` in a URL is not a security boundary, so it is rewritten;
- data queries (`api/ds/query`) only when every PromQL expression selects this session of
  this organisation (`session="<id>"` and `organisation="<slug>"`: session ids are
  numbered per organisation, so a session label alone would reach another's) and no other;
- Grafana's static files (`public/...`).

Anything else is refused with 403 and says why.
"""

import json
import re
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.accounts.access import role_required
from apps.accounts.models import Role
from apps.scenarios.views import _visible

SESSION_MATCHER = re.compile(r"""\bsession\s*(=~|!=|!~|=)\s*"([^"]*)\"""")
ORGANISATION_MATCHER = re.compile(r"""\borganisation\s*(=~|!=|!~|=)\s*"([^"]*)\"""")
FORWARDED_HEADERS = ("Accept", "Content-Type", "Accept-Language")


class NotConfined(Exception):
    """A request that would reach beyond this session."""


LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
BRACES = re.compile(r"\{[^}]*\}")
RANGES = re.compile(r"\[[^\]]*\]")
IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
KEYWORDS = frozenset({"and", "or", "unless", "offset", "bool", "inf", "nan", "e"})


def expression_confined(expr: str, session_id: int, organisation: str) -> None:
    """Every series selector of a PromQL expression must carry session="<id>" and
    organisation="<slug>", and none may name another: `x{session="1"} or up` is refused
    (up is not confined), and so is `x{session="1"}` (every organisation's session 1)."""
    if "__name__" in expr:
        # grouping or matching by metric name lists every series of the session, a
        # drill's hidden scenario's among them
        raise NotConfined("queries may not select or group by metric name")
    expr = LABEL_LISTS.sub(" ", expr)
    for braces in BRACES.findall(expr):
        for matcher, wanted, what in (
            (SESSION_MATCHER, str(session_id), "session"),
            (ORGANISATION_MATCHER, organisation, "organisation"),
        ):
            matchers = matcher.findall(braces)
            if not matchers:
                raise NotConfined(f"a selector does not select this {what}: {braces[:120]}")
            if any(op != "=" or value != wanted for op, value in matchers):
                raise NotConfined(f"a selector reaches another {what}: {braces[:120]}")
    rest = RANGES.sub(" ", BRACES.sub("{}", expr))
    for match in IDENTIFIER.finditer(rest):
        following = rest[match.end() :].lstrip()[:1]
        if following in ("(", "{") or match.group(0).lower() in KEYWORDS:
            continue
        if rest[max(0, match.start() - 1)].isdigit():
            continue  # a number's exponent or unit, as in 1e3 or 5m
        raise NotConfined(f"“{match.group(0)}” selects series of every session")


def query_confined(body: bytes, session_id: int, organisation: str) -> None:
    """Every expression of a Grafana data query must select this session only."""
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        raise NotConfined("the query is not JSON") from None
    queries = payload.get("queries") if isinstance(payload, dict) else None
    if not isinstance(queries, list) or not queries:
        raise NotConfined("no queries")
    for query in queries:
        expr = str((query or {}).get("expr") or "")
        if not expr.strip():
            raise NotConfined("an empty expression")
        expression_confined(expr, session_id, organisation)


def _forward(request: HttpRequest, path: str, query: str, body: bytes | None) -> HttpResponse:
    target = f"{settings.GRAFANA_URL.rstrip('/')}/{path}"
    if query:
        target += f"?{query}"
    headers = {h: request.headers[h] for h in FORWARDED_HEADERS if h in request.headers}
    if settings.GRAFANA_TOKEN:
        headers["Authorization"] = f"Bearer {settings.GRAFANA_TOKEN}"
    upstream = urllib.request.Request(  # noqa: S310 (GRAFANA_URL, an http(s) setting)
        target, data=body, headers=headers, method=request.method
    )
    try:
        with urllib.request.urlopen(upstream, timeout=10) as response:  # noqa: S310 (our setting)
            content, status = response.read(), response.status
            content_type = response.headers.get("Content-Type", "application/octet-stream")
    except urllib.error.HTTPError as exc:
        content, status = exc.read(), exc.code
        content_type = exc.headers.get("Content-Type", "text/plain")
    except OSError:
        return HttpResponse("Grafana did not answer.\n", status=502, content_type="text/plain")
    return HttpResponse(content, status=status, content_type=content_type)


@csrf_exempt  # Grafana's own page posts its queries; the session check below still applies
@role_required(Role.LEARNER)
@require_http_methods(["GET", "POST"])
def lab_grafana(request: HttpRequest, session_id: int, path: str) -> HttpResponse:
    session, _ = _visible(request, session_id)
    if not settings.GRAFANA_URL:
        return HttpResponse(
            "Grafana is not configured (GRAFANA_URL).\n", status=503, content_type="text/plain"
        )
    organisation = request.organisation  # type: ignore[attr-defined]
    if path.startswith("public/") and request.method == "GET":
        return _forward(request, path, request.META.get("QUERY_STRING", ""), None)
    if path.startswith("d-solo/") and request.method == "GET":
        params = [(k, v) for k, v in request.GET.items() if not k.startswith("var-")]
        params += [("var-session", str(session.pk)), ("var-organisation", organisation.slug)]
        return _forward(request, path, urllib.parse.urlencode(params), None)
    if path == "api/ds/query" and request.method == "POST":
        try:
            query_confined(request.body, session.pk, organisation.slug)
        except NotConfined as exc:
            return HttpResponse(f"Refused: {exc}.\n", status=403, content_type="text/plain")
        return _forward(request, path, "", request.body)
    return HttpResponse(
        "Refused: the lab's Grafana proxy serves this session's panels only.\n",
        status=403,
        content_type="text/plain",
    )


lab_grafana.object_level = True  # whose lab it is, checked past the role
