"""Writes to tutorials: content read and checked by `content.py`, stored all or nothing."""

import hashlib
import io
import json
import re
import tempfile
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from django.db import transaction
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.services import audit_record
from apps.tenants.errors import ApplicationError, Conflict, ValidationFailed
from apps.tenants.models import Organisation
from apps.tutorials.content import SLUG, ContentError, tutorial_read, tutorials_read
from apps.tutorials.content import Tutorial as TutorialContent
from apps.tutorials.models import Step, Tutorial


class NotFound(ApplicationError):
    status_code = 404


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


# ------------------------------------------------------------------ an organisation's own
MAX_ZIP_BYTES = 2 * 1024 * 1024
MAX_FILES = 60
MAX_FILE_BYTES = 256 * 1024
SAFE_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # others inflate without bound
FILE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}\.md$")


def _relative(exc: ContentError, root: Path) -> ContentError:
    """The error as the author knows the file: "<tutorial>/<file>", not a temporary path."""
    try:
        shown = exc.path.relative_to(root)
    except ValueError:
        shown = Path(exc.path.name)
    return ContentError(shown, exc.line, exc.message)


def tutorial_files_check(*, slug: str, files: dict[str, str]) -> TutorialContent:
    """Checks a tutorial given as its files, exactly as `tutorials_load` checks a folder:
    ContentError names the file, the line and what is wrong."""
    slug = (slug or "").strip()
    if not SLUG.match(slug):
        raise ContentError(
            Path(slug or "?") / "tutorial.md",
            1,
            "the tutorial's address must be lowercase letters, digits and hyphens",
        )
    if len(files) > MAX_FILES:
        raise ContentError(Path(slug), 1, f"a tutorial has at most {MAX_FILES} files")
    with tempfile.TemporaryDirectory(prefix="tutorial-") as tmp:
        root = Path(tmp)
        folder = root / slug
        folder.mkdir()
        for name, text in files.items():
            if not FILE_NAME.match(name):
                raise ContentError(
                    Path(slug) / name,
                    1,
                    "file names are lowercase, end in .md and have no folders (01-observe.md)",
                )
            if len(text.encode()) > MAX_FILE_BYTES:
                raise ContentError(
                    Path(slug) / name, 1, f"the file is larger than {MAX_FILE_BYTES // 1024} KiB"
                )
            (folder / name).write_text(text.replace("\r\n", "\n"), encoding="utf-8")
        try:
            return tutorial_read(folder)
        except ContentError as exc:
            raise _relative(exc, root) from None


def _platform_slugs() -> set[str]:
    with schema_context("public"):
        return set(Tutorial.objects.values_list("slug", flat=True))


def tutorial_files_save(
    *,
    organisation: Organisation,
    actor: User,
    slug: str,
    files: dict[str, str],
    replacing: bool = False,
) -> Tutorial:
    """Stores an organisation's own tutorial from its files, after the same checks as the
    platform's; nothing is written when anything is wrong. A new one may not take the
    address of another tutorial (its own or the platform's)."""
    content = tutorial_files_check(slug=slug, files=files)
    if content.slug in _platform_slugs():
        raise Conflict(
            f"The platform already has a tutorial at “{content.slug}”: choose another address.",
            extra={"field": "slug"},
        )
    existing = Tutorial.objects.filter(slug=content.slug).exists()
    if existing and not replacing:
        raise Conflict(
            f"Your organisation already has a tutorial at “{content.slug}”.",
            extra={"field": "slug"},
        )
    with transaction.atomic():
        tutorials_store(tutorials=[content])
        Tutorial.objects.filter(slug=content.slug).update(sources=dict(sorted(files.items())))
        audit_record(
            organisation=organisation,
            actor=actor,
            action="tutorial.update" if existing else "tutorial.create",
            target=content.slug,
            after={"title": content.title, "steps": len(content.steps)},
        )
    return Tutorial.objects.get(slug=content.slug)


def _entry_text(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """One entry's text, never decompressing more than the limit, whatever its header
    claims (a zip bomb says it is small)."""
    too_big = ValidationFailed(
        f"“{info.filename}” is larger than {MAX_FILE_BYTES // 1024} KiB.", extra={"field": "file"}
    )
    if info.file_size > MAX_FILE_BYTES:
        raise too_big
    try:
        with archive.open(info) as entry:
            raw = entry.read(MAX_FILE_BYTES + 1)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, zlib.error):
        raise ValidationFailed(
            f"“{info.filename}” cannot be unpacked: the zip is damaged.", extra={"field": "file"}
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise too_big
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed(
            f"“{info.filename}” is not UTF-8 text.", extra={"field": "file"}
        ) from None


def tutorial_zip_read(data: bytes) -> list[tuple[str, dict[str, str]]]:
    """The tutorials in a zip: one folder each (or the files of one at the top, named by
    its title's folder). Refuses what is not a plain, small zip of Markdown files."""
    if len(data) > MAX_ZIP_BYTES:
        raise ValidationFailed(
            f"The zip is larger than {MAX_ZIP_BYTES // (1024 * 1024)} MiB.", extra={"field": "file"}
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError):
        raise ValidationFailed("That file is not a zip.", extra={"field": "file"}) from None
    folders: dict[str, dict[str, str]] = {}
    with archive:
        entries = [i for i in archive.infolist() if not i.is_dir()]
        if len(entries) > MAX_FILES * 10:
            raise ValidationFailed("The zip holds too many files.", extra={"field": "file"})
        total = 0
        for info in entries:
            parts = PurePosixPath(info.filename).parts
            if info.filename.startswith("/") or ".." in parts or len(parts) > 2:
                raise ValidationFailed(
                    f"“{info.filename}”: a tutorial is a folder of Markdown files, no deeper.",
                    extra={"field": "file"},
                )
            if parts[-1].startswith(".") or parts[0] == "__MACOSX":
                continue  # an archiver's own files
            if info.compress_type not in SAFE_COMPRESSION or info.flag_bits & 0x1:
                raise ValidationFailed(
                    f"“{info.filename}” is encrypted or compressed in a way this upload does "
                    "not take: zip it with the usual (deflate) compression.",
                    extra={"field": "file"},
                )
            folder = parts[0] if len(parts) == 2 else ""
            text = _entry_text(archive, info)
            total += len(text)
            if total > MAX_ZIP_BYTES * 4:
                raise ValidationFailed("The zip unpacks to too much text.", extra={"field": "file"})
            folders.setdefault(folder, {})[parts[-1]] = text
    if not folders:
        raise ValidationFailed("The zip is empty.", extra={"field": "file"})
    if "" in folders:
        raise ValidationFailed(
            "Put each tutorial's files in a folder named after it (my-tutorial/tutorial.md).",
            extra={"field": "file"},
        )
    return sorted(folders.items())


def tutorial_zip_upload(*, organisation: Organisation, actor: User, data: bytes) -> list[Tutorial]:
    """Every tutorial in the zip is checked before any is stored; all or none."""
    found = tutorial_zip_read(data)
    for slug, files in found:
        tutorial_files_check(slug=slug, files=files)
    with transaction.atomic():
        return [
            tutorial_files_save(
                organisation=organisation, actor=actor, slug=slug, files=files, replacing=True
            )
            for slug, files in found
        ]


@transaction.atomic
def tutorial_delete(*, organisation: Organisation, actor: User, slug: str) -> None:
    tutorial = Tutorial.objects.filter(slug=slug).first()
    if tutorial is None:
        raise NotFound(f"Your organisation has no tutorial “{slug}”.", extra={"field": "slug"})
    audit_record(
        organisation=organisation,
        actor=actor,
        action="tutorial.delete",
        target=slug,
        before={"title": tutorial.title},
    )
    tutorial.delete()
