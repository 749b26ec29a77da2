from django.contrib.auth import views as auth_views
from django.urls import path

from apps.accounts.views import LoginView, workspace_home

urlpatterns = [
    path("", workspace_home, name="home"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
