"""Tutorials and their steps. The same tables exist in the public schema (the platform's
tutorials, loaded from `apps/tutorials/content/`) and in each organisation's schema (the
tutorials its instructors write), so an organisation's own never leak to another."""

from django.db import models


class Tutorial(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    series = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    level = models.CharField(max_length=20)
    minutes = models.PositiveSmallIntegerField()
    summary = models.TextField(blank=True)
    body = models.TextField(blank=True)
    scenarios = models.JSONField(default=list, blank=True)  # the lab starts with these
    content_hash = models.CharField(max_length=64)  # a reload that changes nothing writes nothing
    sources = models.JSONField(default=dict, blank=True)  # file name -> text, for the editor
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["series", "slug"]

    def __str__(self) -> str:
        return self.title


class Step(models.Model):
    tutorial = models.ForeignKey(Tutorial, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    slug = models.SlugField(max_length=80)
    title = models.CharField(max_length=200)
    body = models.TextField()
    checks = models.JSONField(default=list)
    hints = models.JSONField(default=list, blank=True)
    solution = models.JSONField(default=list, blank=True)  # hidden from learners
    depends_on = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["tutorial", "position"]
        constraints = [
            models.UniqueConstraint(fields=["tutorial", "slug"], name="one_step_slug_per_tutorial")
        ]

    def __str__(self) -> str:
        return f"{self.tutorial.slug}/{self.slug}"
