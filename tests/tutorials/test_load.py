"""Loading tutorials: all or nothing, idempotent, and an organisation's own tutorials
stay in its schema."""

import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context, tenant_context

from apps.tutorials.content import tutorial_read
from apps.tutorials.models import Step, Tutorial
from apps.tutorials.services import tutorials_store

CONTENT = Path(__file__).resolve().parents[2] / "apps" / "tutorials" / "content"


def test_load_is_idempotent_and_refuses_bad_content_without_losing_anything(db, tmp_path):
    call_command("tutorials_load")
    with schema_context("public"):
        loaded = {t.slug: t.updated_at for t in Tutorial.objects.all()}
        steps = Step.objects.count()
    assert "slow-dependency" in loaded
    assert steps >= 2

    call_command("tutorials_load")  # nothing changed: nothing written
    with schema_context("public"):
        assert {t.slug: t.updated_at for t in Tutorial.objects.all()} == loaded

    broken = tmp_path / "content"
    shutil.copytree(CONTENT, broken)
    first = sorted(broken.iterdir())[0]
    step = sorted(first.glob("0*.md"))[0]
    step.write_text(step.read_text().replace("type: metric", "type: horoscope", 1))
    (broken / "another").mkdir()
    with pytest.raises(CommandError) as refused:
        call_command("tutorials_load", str(broken))
    message = str(refused.value)
    assert f"{step}:" in message
    assert "check type must be one of" in message
    assert f"{broken / 'another' / 'tutorial.md'}:1: a tutorial folder needs" in message
    assert "nothing was loaded" in str(refused.value)
    with schema_context("public"):
        assert {t.slug: t.updated_at for t in Tutorial.objects.all()} == loaded
        assert Step.objects.count() == steps


def test_an_organisations_tutorials_stay_in_its_schema(org_a, org_b):
    content = tutorial_read(CONTENT / "slow-dependency")
    with tenant_context(org_a):
        tutorials_store(tutorials=[content])
        assert Tutorial.objects.filter(slug="slow-dependency").exists()
    with tenant_context(org_b):
        assert not Tutorial.objects.exists()
    with schema_context("public"):
        assert not Tutorial.objects.filter(slug="slow-dependency").exists()
