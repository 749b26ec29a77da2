from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from apps.accounts.views import LoginView
from apps.tenants.api import SlugAvailabilityApi
from apps.tenants.views import landing

urlpatterns = [
    path("", landing, name="home"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path(
        "api/v1/organisations/slug-availability",
        SlugAvailabilityApi.as_view(),
        name="api-slug-availability",
    ),
]
