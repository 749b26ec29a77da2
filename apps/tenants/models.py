from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Plan(models.Model):  # type: ignore[django-manager-missing]
    """What an organisation pays for: seats and concurrent sandboxes."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    seats = models.PositiveIntegerField(default=10)
    sandbox_quota = models.PositiveIntegerField(default=5)

    def __str__(self) -> str:
        return self.name


class Organisation(TenantMixin):
    """A customer workspace: one PostgreSQL schema, reached on <slug>.<BASE_DOMAIN>."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="organisations"
    )
    # When set, only people with an address in one of these domains can be invited or join.
    allowed_email_domains = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # The schema is cloned from the template by organisation_create, never migrated here.
    auto_create_schema = False
    auto_drop_schema = True

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def seats(self) -> int:
        return self.plan.seats if self.plan else Plan._meta.get_field("seats").get_default()

    @property
    def sandbox_quota(self) -> int:
        if self.plan:
            return self.plan.sandbox_quota
        return int(Plan._meta.get_field("sandbox_quota").get_default())

    def email_allowed(self, email: str) -> bool:
        domains = [d.lower() for d in self.allowed_email_domains or []]
        return not domains or email.rsplit("@", 1)[-1].lower() in domains


class Domain(DomainMixin):
    pass
