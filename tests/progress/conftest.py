"""A small tutorial of the organisation's own, written for the progress tests: one step
with a metric check and a quiz, one that depends on it with scenario and mitigation checks."""

from collections.abc import Callable
from pathlib import Path

import pytest
from django_tenants.utils import tenant_context

from apps.tenants.models import Organisation
from apps.tutorials.content import tutorial_read
from apps.tutorials.services import tutorials_store

TUTORIAL = {
    "tutorial.md": (
        "---\nseries: observability\ntitle: Watch and fix\nlevel: beginner\nminutes: 10\n"
        "lab:\n  scenarios: []\n---\nWatch the shop, break it, fix it.\n"
    ),
    "01-observe.md": (
        "---\ntitle: Observe\nchecks:\n"
        "  - {id: healthy, type: metric, figure: users.success_ratio, op: '>=', value: 0.9,"
        " for_seconds: 2, message: The shop is healthy.}\n"
        "  - id: meaning\n    type: quiz\n    points: 2\n    question: What is p99?\n"
        "    choices:\n"
        "      - {text: The 99th percentile, correct: true, explanation: Right.}\n"
        "      - {text: The mean, explanation: 'No, that is the average.'}\n"
        "hints:\n  - {after_attempts: 1, text: Percentiles rank requests by latency.}\n"
        "  - {after_seconds: 3600, text: Look at the latency chart.}\n"
        "---\nLook at the shop.\n"
    ),
    "02-fix.md": (
        "---\ntitle: Break and fix\ndepends_on: [observe]\nchecks:\n"
        "  - {id: broken, type: scenario, slug: fixed-latency, enabled: true}\n"
        "  - {id: fixed, type: mitigation, slug: longer-cache-ttl, enabled: true}\n"
        "solution:\n  - {action: scenario, slug: fixed-latency, enabled: true}\n"
        "---\nBreak it, then fix it.\n"
    ),
}


def tutorial_write(folder: Path, files: dict[str, str] = TUTORIAL) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def own_tutorial(tmp_path: Path) -> Callable[[Organisation], str]:
    """Stores the tutorial in an organisation's schema; returns its slug."""

    def store(organisation: Organisation) -> str:
        folder = tutorial_write(tmp_path / "watch-and-fix")
        with tenant_context(organisation):
            tutorials_store(tutorials=[tutorial_read(folder)])
        return "watch-and-fix"

    return store
