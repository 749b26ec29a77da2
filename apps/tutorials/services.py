"""Writes to tutorials: content read and checked by `content.py`, stored all or nothing."""

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from django.db import transaction

from apps.tutorials.content import Tutorial as TutorialContent
from apps.tutorials.content import tutorials_read
from apps.tutorials.models import Step, Tutorial


@dataclass
class LoadReport:
    created: list[str]
    updated: list[str]
    unchanged: list[str]


def _hash(content: TutorialContent) -> str:
    return hashlib.sha256(json.dumps(asdict(content), sort_keys=True).encode()).hexdigest()


@transaction.atomic
def tutorials_store(*, tutorials: list[TutorialContent]) -> LoadReport:
    """Stores checked tutorials in the current schema. A tutorial whose content did not
    change is not touched; one that changed has its steps replaced."""
    report = LoadReport([], [], [])
    for content in tutorials:
        digest = _hash(content)
        existing = Tutorial.objects.filter(slug=content.slug).first()
        if existing is not None and existing.content_hash == digest:
            report.unchanged.append(content.slug)
            continue
        fields = {
            "series": content.series,
            "title": content.title,
            "level": content.level,
            "minutes": content.minutes,
            "summary": content.summary,
            "body": content.body,
            "scenarios": [list(s) for s in content.scenarios],
            "content_hash": digest,
        }
        tutorial, created = Tutorial.objects.update_or_create(slug=content.slug, defaults=fields)
        tutorial.steps.all().delete()
        Step.objects.bulk_create(
            Step(
                tutorial=tutorial,
                position=n,
                slug=step.slug,
                title=step.title,
                body=step.body,
                checks=[asdict(c) for c in step.checks],
                hints=[asdict(h) for h in step.hints],
                solution=list(step.solution),
                depends_on=list(step.depends_on),
            )
            for n, step in enumerate(content.steps, start=1)
        )
        (report.created if created else report.updated).append(content.slug)
    return report


def tutorials_load(*, root: Path) -> LoadReport:
    """Reads every tutorial under `root` first (ContentError at the first bad file, with
    nothing written), then stores them all in one transaction."""
    return tutorials_store(tutorials=tutorials_read(root))
