"""The committed OpenAPI schemas, one per site: written by `make openapi`, checked by `make test`.

django-tenants serves the public site and the organisations' sites from different URL confs,
so each gets its own schema. Generating one reads views and serializers only, never the
database.
"""

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiYamlRenderer
from drf_spectacular.validation import validate_schema

SCHEMA_DIR = Path(settings.BASE_DIR) / "config" / "openapi"
SITES = ("public", "tenant")
CHECK_HINT = "run `make openapi` and review the change"


class SchemaProblem(Exception):
    """The generated schema cannot be committed as it is."""


def site_urlconf(site: str) -> str:
    return {"public": settings.PUBLIC_SCHEMA_URLCONF, "tenant": settings.ROOT_URLCONF}[site]


def schema_path(site: str) -> Path:
    return SCHEMA_DIR / f"{site}.yaml"


def schema_render(*, site: str) -> str:
    """The site's schema as YAML; raises SchemaProblem if it is invalid or drf-spectacular
    had to guess (a warning now is a wrong schema later)."""
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence(), translation.override(settings.LANGUAGE_CODE):
        schema = SchemaGenerator(urlconf=site_urlconf(site)).get_schema(request=None, public=True)
        guesses = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    GENERATOR_STATS.reset()
    if guesses:
        raise SchemaProblem(
            f"{site} schema: drf-spectacular could not read every view:\n  - "
            + "\n  - ".join(guesses)
        )
    try:
        validate_schema(schema)
    except jsonschema.ValidationError as exc:
        raise SchemaProblem(f"{site} schema is not valid OpenAPI: {exc.message}") from exc
    return OpenApiYamlRenderer().render(schema).decode()


def schema_difference(*, site: str, committed: str | None, generated: str) -> str:
    """A unified diff from the committed schema to the generated one; empty when equal."""
    name = str(schema_path(site).relative_to(settings.BASE_DIR))
    if committed is None:
        return f"{name} is missing\n"
    return "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            generated.splitlines(keepends=True),
            fromfile=f"{name} (committed)",
            tofile=f"{name} (generated)",
        )
    )


def schema_problems(*, committed: Mapping[str, str | None] | None = None) -> list[str]:
    """What is wrong with the committed schemas (the files, unless `committed` maps a site to
    its text); an empty list when every one is valid and up to date."""
    problems = []
    for site in SITES:
        if committed is not None:
            text = committed.get(site)
        else:
            path = schema_path(site)
            text = path.read_text(encoding="utf-8") if path.exists() else None
        try:
            generated = schema_render(site=site)
        except SchemaProblem as exc:
            problems.append(str(exc))
            continue
        difference = schema_difference(site=site, committed=text, generated=generated)
        if difference:
            problems.append(difference)
    return problems


class Command(BaseCommand):
    help = "Write config/openapi/{public,tenant}.yaml, or with --check fail if they are stale."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="Regenerate in memory and fail with a diff if a committed schema differs.",
        )

    def handle(self, *args: Any, check: bool = False, **options: Any) -> None:
        if check:
            problems = schema_problems()
            if problems:
                for problem in problems:
                    self.stderr.write(problem)
                raise CommandError(
                    f"The committed OpenAPI schemas are stale or invalid: {CHECK_HINT}."
                )
            self.stdout.write("The committed OpenAPI schemas are up to date.")
            return
        try:
            rendered = {site: schema_render(site=site) for site in SITES}
        except SchemaProblem as exc:
            raise CommandError(str(exc)) from exc
        SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
        for site, text in rendered.items():
            path = schema_path(site)
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
                self.stdout.write(f"wrote {path.relative_to(settings.BASE_DIR)}")
