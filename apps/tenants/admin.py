from django.contrib import admin
from django_tenants.admin import TenantAdminMixin

from apps.tenants.models import Domain, Organisation, Plan


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "seats", "sandbox_quota")


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Organisation)
class OrganisationAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "schema_name", "plan", "created_at")
    search_fields = ("name", "slug")
    readonly_fields = ("schema_name",)
    inlines = [DomainInline]
