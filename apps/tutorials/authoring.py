"""Instructors' pages for their organisation's own tutorials: upload a folder as a zip,
or write one in the browser with a preview. The same checks as the platform's content;
an error names the file and the line, and nothing saved before is lost."""

from __future__ import annotations

from dataclasses import asdict

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.access import role_required
from apps.accounts.forms import form_error
from apps.accounts.models import Role
from apps.scenarios.prose import MARKDOWN
from apps.tenants.errors import ApplicationError
from apps.tutorials.content import ContentError
from apps.tutorials.content import Tutorial as TutorialContent
from apps.tutorials.models import Tutorial
from apps.tutorials.selectors import series_title
from apps.tutorials.services import (
    MAX_ZIP_BYTES,
    tutorial_delete,
    tutorial_files_check,
    tutorial_files_save,
    tutorial_zip_upload,
)

STARTER = {
    "tutorial.md": (
        "---\nseries: resilience\ntitle: My tutorial\nlevel: beginner\nminutes: 20\n"
        "summary: What the learner will be able to do.\nlab:\n  scenarios: []\n---\n"
        "Why this matters, in a paragraph.\n"
    ),
    "01-observe.md": (
        "---\ntitle: Observe the healthy shop\nchecks:\n"
        "  - {id: healthy, type: metric, figure: users.success_ratio, op: '>=', value: 0.95,"
        " for_seconds: 5}\nhints:\n  - {after_seconds: 120, text: Pick the service users.}\n"
        "---\nWhat to look at, and why.\n"
    ),
}


class UploadForm(forms.Form):
    file = forms.FileField(help_text="A zip of tutorial folders: my-tutorial/tutorial.md, …")


def _files_from(request: HttpRequest) -> dict[str, str]:
    names = request.POST.getlist("name")
    texts = request.POST.getlist("text")
    return {
        name.strip(): text
        for name, text in zip(names, texts, strict=False)
        if name.strip() or text.strip()
    }


def _preview(content: TutorialContent) -> dict:
    return {
        "tutorial": content,
        "series": series_title(content.series),
        "intro": MARKDOWN.render(content.body),
        "steps": [
            {"step": s, "html": MARKDOWN.render(s.body), "checks": [asdict(c) for c in s.checks]}
            for s in content.steps
        ],
    }


@role_required(Role.INSTRUCTOR)
@require_GET
def authoring(request: HttpRequest) -> HttpResponse:
    own = Tutorial.objects.order_by("title")
    return render(request, "tutorials/authoring/list.html", {"own": own, "form": UploadForm()})


@role_required(Role.INSTRUCTOR)
@require_POST
def upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST, request.FILES)
    if form.is_valid() and form.cleaned_data["file"].size > MAX_ZIP_BYTES:
        form.add_error("file", f"The zip is larger than {MAX_ZIP_BYTES // (1024 * 1024)} MiB.")
    if form.is_valid():
        try:
            stored = tutorial_zip_upload(
                organisation=request.organisation,  # type: ignore[attr-defined]
                actor=request.user,  # type: ignore[arg-type]
                data=form.cleaned_data["file"].read(),
            )
        except ContentError as exc:
            form.add_error("file", str(exc))
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            titles = ", ".join(t.title for t in stored)
            messages.success(request, f"Uploaded: {titles}.")
            return redirect("authoring")
    own = Tutorial.objects.order_by("title")
    return render(request, "tutorials/authoring/list.html", {"own": own, "form": form}, status=422)


@role_required(Role.INSTRUCTOR)
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """New (no slug) or existing tutorial. "Preview" checks and renders without saving;
    "Save" stores it when it is valid. Errors name the file and the line."""
    existing = Tutorial.objects.filter(slug=slug).first() if slug else None
    if slug and existing is None:
        raise Http404("Your organisation has no such tutorial")
    if request.method == "GET":
        starting = dict(existing.sources) if existing else dict(STARTER)
        return render(
            request,
            "tutorials/authoring/edit.html",
            {"slug": slug or "", "files": starting, "existing": existing},
        )
    new_slug = slug or request.POST.get("slug", "").strip()
    files = _files_from(request)
    context: dict = {"slug": new_slug, "files": files, "existing": existing}
    status = 200
    try:
        content = tutorial_files_check(slug=new_slug, files=files)
        if request.POST.get("action") == "save":
            stored = tutorial_files_save(
                organisation=request.organisation,  # type: ignore[attr-defined]
                actor=request.user,  # type: ignore[arg-type]
                slug=new_slug,
                files=files,
                replacing=existing is not None,
            )
            messages.success(request, f"Saved “{stored.title}”.")
            return redirect("authoring-edit", slug=stored.slug)
        context["preview"] = _preview(content)
    except ContentError as exc:
        context["problem"] = str(exc)
        status = 422
    except ApplicationError as exc:
        context["problem"] = exc.message
        status = exc.status_code
    if request.headers.get("HX-Request"):  # htmx swaps only 2xx answers: the error is content
        return render(request, "tutorials/authoring/_preview.html", context)
    return render(request, "tutorials/authoring/edit.html", context, status=status)


@role_required(Role.INSTRUCTOR)
@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, slug: str) -> HttpResponse:
    tutorial = Tutorial.objects.filter(slug=slug).first()
    if tutorial is None:
        raise Http404("Your organisation has no such tutorial")
    if request.method == "POST":
        tutorial_delete(
            organisation=request.organisation,  # type: ignore[attr-defined]
            actor=request.user,  # type: ignore[arg-type]
            slug=slug,
        )
        messages.success(request, f"Deleted “{tutorial.title}”.")
        return redirect("authoring")
    return render(request, "tutorials/authoring/delete.html", {"tutorial": tutorial})
