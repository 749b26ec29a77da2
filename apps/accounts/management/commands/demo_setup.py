import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from apps.accounts.demo import DEMO_USERS, STAFF_EMAIL, demo_setup


class Command(BaseCommand):
    help = "Creates the demo organisation and its users if they are missing (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password", default=os.environ.get("DEMO_PASSWORD", "sdlab-demo-2026")
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = demo_setup(password=options["password"])
        if result.created:
            for item in result.created:
                self.stdout.write(f"created {item}")
        else:
            self.stdout.write("demo organisation already set up; nothing changed")
        port = settings.PUBLIC_PORT
        base = settings.BASE_DOMAIN
        self.stdout.write("")
        self.stdout.write(f"  public site        http://{base}:{port}/")
        self.stdout.write(
            f"  demo organisation  http://{result.organisation.slug}.{base}:{port}/accounts/login/"
        )
        self.stdout.write(f"  platform admin     http://{base}:{port}/admin/  ({STAFF_EMAIL})")
        for email, _, role in DEMO_USERS:
            self.stdout.write(f"  {role:<10} {email}")
        self.stdout.write(f"  password   {options['password']}")
