from django.contrib import admin
from django.urls import include, path

from apps.accounts.views import api_token, organisation_new
from apps.tenants.api import SlugAvailabilityApi
from apps.tenants.views import landing

urlpatterns = [
    path("", landing, name="home"),
    path("organisations/new/", organisation_new, name="organisation-new"),
    path("accounts/api-token/", api_token, name="api-token"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path(
        "api/v1/organisations/slug-availability",
        SlugAvailabilityApi.as_view(),
        name="api-slug-availability",
    ),
]
