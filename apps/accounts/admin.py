from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from apps.accounts.models import AuditEntry, Invitation, Membership, User


@admin.register(User)
class AccountAdmin(UserAdmin):
    list_display = ("email", "display_name", "is_staff", "is_active", "date_joined")
    search_fields = ("email", "display_name")
    ordering = ("email",)
    fieldsets = (*(UserAdmin.fieldsets or ()), ("Profile", {"fields": ("display_name",)}))


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organisation", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "organisation__slug")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records staff may look at but not rewrite: they change only through the services."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ("organisation", "kind", "email", "role", "uses", "max_uses", "expires_at")
    list_filter = ("kind", "role")
    search_fields = ("email", "organisation__slug")
    exclude = ("token_hash",)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "organisation", "actor_email", "action", "target")
    list_filter = ("action",)
    search_fields = ("actor_email", "target", "organisation__slug")
