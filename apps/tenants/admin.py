from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms import ModelForm
from django.http import HttpRequest
from django_tenants.admin import TenantAdminMixin

from apps.tenants.errors import ApplicationError
from apps.tenants.models import Domain, Organisation, Plan
from apps.tenants.services import organisation_create


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "seats", "sandbox_quota")


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


class OrganisationAddForm(ModelForm):
    """Checks the address with the same rules as sign-up, before anything is written."""

    class Meta:
        model = Organisation
        fields = ("name", "slug", "plan")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        from apps.tenants.selectors import slug_availability

        slug = data.get("slug") or ""
        try:
            if not slug_availability(slug=slug).available:
                raise ValidationError({"slug": f"The address “{slug}” is already taken."})
        except ApplicationError as exc:
            raise ValidationError({"slug": exc.message}) from exc
        return data


@admin.register(Organisation)
class OrganisationAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "schema_name", "plan", "created_at")
    search_fields = ("name", "slug")
    readonly_fields = ("schema_name",)
    inlines = [DomainInline]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = OrganisationAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("name", "slug", "plan")
        return ("name", "slug", "schema_name", "plan")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The slug names the schema and the domain: it does not change after creation.
        return ("schema_name", "slug") if obj is not None else ()

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.inlines if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Organisation, form: Any, change: bool) -> None:
        if change:
            obj.save()
            return
        # A new organisation is made by the service: schema cloned, domain added.
        created = organisation_create(name=obj.name, slug=obj.slug, plan=obj.plan)
        obj.pk = created.pk
        obj.schema_name = created.schema_name
        obj._state.adding = False
        messages.info(request, f"Organisation created at {created.slug}.")
