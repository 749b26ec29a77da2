from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from apps.accounts.models import Membership, User


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
