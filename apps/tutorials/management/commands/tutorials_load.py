from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from apps.tutorials.content import ContentError
from apps.tutorials.services import tutorials_load

CONTENT = Path(__file__).resolve().parents[2] / "content"


class Command(BaseCommand):
    help = "Checks and loads the platform's tutorials (or a folder of them) into the public schema."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("root", nargs="?", type=Path, default=CONTENT)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with schema_context("public"):
                report = tutorials_load(root=options["root"])
        except ContentError as exc:
            raise CommandError(f"{exc} (nothing was loaded)") from None
        self.stdout.write(
            f"tutorials: {len(report.created)} created, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged"
        )
