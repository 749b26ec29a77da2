"""An organisation's own tutorials, written in the browser or uploaded as a zip: checked
like the platform's (file, line and reason), nothing saved is lost to a bad edit or a bad
upload, visible only in that organisation, and only instructors author them."""

import io
import zipfile
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import schema_context, tenant_context

from apps.accounts.models import Role
from apps.tutorials.content import tutorial_read
from apps.tutorials.models import Tutorial
from apps.tutorials.services import MAX_FILE_BYTES, tutorials_store
from tests.conftest import make_member
from tests.progress.conftest import TUTORIAL

CONTENT = Path(__file__).resolve().parents[2] / "apps" / "tutorials" / "content"


def form_of(files: dict[str, str], **extra: str) -> dict:
    return {"name": list(files), "text": list(files.values()), **extra}


def zipped(entries: dict[str, str]) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in entries.items():
            archive.writestr(name, text)
    return SimpleUploadedFile("tutorials.zip", buffer.getvalue(), "application/zip")


def test_instructors_write_preview_and_save_a_tutorial(org_a, org_b, site_client):
    client = site_client(org_a, make_member(org_a, Role.INSTRUCTOR))
    assert (
        site_client(org_a, make_member(org_a, Role.LEARNER)).get("/authoring/").status_code == 403
    )
    starter = client.get("/authoring/new/").content.decode()
    assert "tutorial.md" in starter

    broken = dict(TUTORIAL)
    broken["01-observe.md"] = broken["01-observe.md"].replace("op: '>='", "op: '=~'")
    refused = client.post("/authoring/new/", form_of(broken, slug="incident-review", action="save"))
    assert refused.status_code == 422
    text = refused.content.decode()
    assert "incident-review/01-observe.md:4:" in text
    assert "“op” must be one of" in text
    with tenant_context(org_a):
        assert not Tutorial.objects.exists()

    preview = client.post(
        "/authoring/new/",
        form_of(TUTORIAL, slug="incident-review", action="preview"),
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert 'data-testid="valid"' in preview
    assert "Watch and fix" in preview
    bad_name = client.post(
        "/authoring/new/",
        form_of({**TUTORIAL, "../../etc.md": "x"}, slug="incident-review", action="preview"),
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "file names are lowercase" in bad_name

    saved = client.post("/authoring/new/", form_of(TUTORIAL, slug="incident-review", action="save"))
    assert saved["Location"] == "/authoring/incident-review/edit/"
    with tenant_context(org_a):
        stored = Tutorial.objects.get(slug="incident-review")
        assert stored.sources["tutorial.md"] == TUTORIAL["tutorial.md"]
        assert stored.steps.count() == 2

    # A bad edit is refused and loses nothing.
    edited = dict(TUTORIAL)
    edited["tutorial.md"] = edited["tutorial.md"].replace("minutes: 10", "minutes: 0")
    again = client.post("/authoring/incident-review/edit/", form_of(edited, action="save"))
    assert again.status_code == 422
    assert "incident-review/tutorial.md:5:" in again.content.decode()
    with tenant_context(org_a):
        assert Tutorial.objects.get(slug="incident-review").minutes == 10
    fixed = dict(TUTORIAL)
    fixed["tutorial.md"] = fixed["tutorial.md"].replace("minutes: 10", "minutes: 25")
    client.post("/authoring/incident-review/edit/", form_of(fixed, action="save"))
    with tenant_context(org_a):
        assert Tutorial.objects.get(slug="incident-review").minutes == 25

    # The platform's addresses are taken; another organisation never sees this one.
    with schema_context("public"):
        tutorials_store(tutorials=[tutorial_read(CONTENT / "slow-dependency")])
    taken = client.post("/authoring/new/", form_of(TUTORIAL, slug="slow-dependency", action="save"))
    assert taken.status_code == 409
    assert "The platform already has a tutorial" in taken.content.decode()
    elsewhere = site_client(org_b, make_member(org_b, Role.INSTRUCTOR))
    assert elsewhere.get("/tutorials/incident-review/").status_code == 404
    assert elsewhere.get("/authoring/incident-review/edit/").status_code == 404
    assert "Watch and fix" not in elsewhere.get("/tutorials/").content.decode()

    assert (
        'data-testid="confirm-delete"'
        in client.get("/authoring/incident-review/delete/").content.decode()
    )
    client.post("/authoring/incident-review/delete/")
    with tenant_context(org_a):
        assert not Tutorial.objects.filter(slug="incident-review").exists()


def test_a_zip_upload_is_all_or_nothing_and_names_the_bad_file(org_a, site_client):
    client = site_client(org_a, make_member(org_a, Role.INSTRUCTOR))
    good = {f"first-one/{name}": text for name, text in TUTORIAL.items()}
    second = {f"second-one/{name}": text for name, text in TUTORIAL.items()}
    bad = dict(second)
    bad["second-one/02-fix.md"] = bad["second-one/02-fix.md"].replace(
        "slug: fixed-latency", "slug: meteor-strike"
    )
    refused = client.post("/authoring/upload/", {"file": zipped({**good, **bad})})
    assert refused.status_code == 422
    text = refused.content.decode()
    assert "second-one/02-fix.md:5: unknown scenario “meteor-strike”" in text
    with tenant_context(org_a):
        assert not Tutorial.objects.exists()  # the good one was not stored either

    for entries, reason in (
        ({"../evil/tutorial.md": "x"}, "no deeper"),
        ({"tutorial.md": TUTORIAL["tutorial.md"]}, "in a folder named after it"),
        ({"a/b/c.md": "x"}, "no deeper"),
    ):
        answer = client.post("/authoring/upload/", {"file": zipped(entries)})
        assert answer.status_code == 422
        assert reason in answer.content.decode()
    not_zip = client.post(
        "/authoring/upload/", {"file": SimpleUploadedFile("t.zip", b"not a zip", "application/zip")}
    )
    assert "That file is not a zip." in not_zip.content.decode()

    accepted = client.post("/authoring/upload/", {"file": zipped({**good, **second})}, follow=True)
    assert "Uploaded: Watch and fix, Watch and fix." in accepted.content.decode()
    with tenant_context(org_a):
        assert set(Tutorial.objects.values_list("slug", flat=True)) == {"first-one", "second-one"}


def lying_zip(name: str, size: int, claimed: int) -> SimpleUploadedFile:
    """A zip bomb's trick: an entry that unpacks to `size` bytes while its header claims
    `claimed`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, "a" * size)
    data = bytearray(buffer.getvalue())
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = claimed.to_bytes(4, "little")  # uncompressed size
    return SimpleUploadedFile("bomb.zip", bytes(data), "application/zip")


def test_a_zip_bomb_or_an_odd_zip_is_refused_without_unpacking_it(org_a, site_client):
    client = site_client(org_a, make_member(org_a, Role.INSTRUCTOR))
    bomb = client.post(
        "/authoring/upload/",
        {"file": lying_zip("bomb/tutorial.md", size=MAX_FILE_BYTES * 8, claimed=100)},
    )
    assert bomb.status_code == 422
    # read no further than its header's claim, the entry fails its checksum: refused
    assert "“bomb/tutorial.md” cannot be unpacked" in bomb.content.decode()
    honest = client.post(
        "/authoring/upload/",
        {"file": lying_zip("big/tutorial.md", size=MAX_FILE_BYTES * 8, claimed=MAX_FILE_BYTES * 8)},
    )
    assert "“big/tutorial.md” is larger than 256 KiB" in honest.content.decode()

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("odd/tutorial.md", TUTORIAL["tutorial.md"])
    odd = client.post(
        "/authoring/upload/",
        {"file": SimpleUploadedFile("odd.zip", buffer.getvalue(), "application/zip")},
    )
    assert odd.status_code == 422
    assert "compressed in a way this upload does not take" in odd.content.decode()
    with tenant_context(org_a):
        assert not Tutorial.objects.exists()
