import asyncio
import contextlib
import os
from typing import Any

from django.core.management.base import BaseCommand

from apps.scenarios.relay import Relay


class Command(BaseCommand):
    help = "Runs the telemetry relay: each running sandbox read once a second, one frame sent."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--ticks", type=int, default=None, help="stop after this many ticks")
        parser.add_argument(
            "--metrics-port", type=int, default=None, help="serve the relay's /metrics here"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["metrics_port"]:
            from prometheus_client import start_http_server

            start_http_server(
                options["metrics_port"], addr=os.environ.get("METRICS_ADDR", "127.0.0.1")
            )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(Relay().run(ticks=options["ticks"]))
