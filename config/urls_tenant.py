from django.urls import include, path

from apps.accounts import console
from apps.accounts.views import api_token, join, workspace_home
from apps.scenarios import views as labs
from apps.scenarios.grafana import lab_grafana
from apps.tutorials import views as tutorials

console_patterns = [
    path("", console.console_home, name="console"),
    path("members/", console.members, name="console-members"),
    path("members/<int:pk>/role/", console.member_role, name="console-member-role"),
    path("members/<int:pk>/remove/", console.member_remove, name="console-member-remove"),
    path("invitations/", console.invitations, name="console-invitations"),
    path("invitations/new/", console.invitation_new, name="console-invitation-new"),
    path("invitations/bulk/", console.invitation_bulk, name="console-invitation-bulk"),
    path("invitations/link/", console.invitation_link_new, name="console-invitation-link"),
    path(
        "invitations/<int:pk>/resend/",
        console.invitation_resend_view,
        name="console-invitation-resend",
    ),
    path(
        "invitations/<int:pk>/revoke/",
        console.invitation_revoke_view,
        name="console-invitation-revoke",
    ),
    path("settings/", console.settings_view, name="console-settings"),
    path("audit/", console.audit, name="console-audit"),
]

urlpatterns = [
    path("", workspace_home, name="home"),
    path("join/<str:token>/", join, name="join"),
    path("manage/", include(console_patterns)),
    path("tutorials/", tutorials.tutorials, name="tutorials"),
    path("tutorials/<slug:slug>/", tutorials.tutorial, name="tutorial"),
    path("labs/", labs.labs, name="labs"),
    path("labs/start/", labs.lab_start, name="lab-start"),
    path("labs/<int:session_id>/", labs.lab, name="lab"),
    path("labs/<int:session_id>/stop/", labs.lab_stop, name="lab-stop"),
    path("labs/<int:session_id>/extend/", labs.lab_extend, name="lab-extend"),
    path("labs/<int:session_id>/grafana/<path:path>", lab_grafana, name="lab-grafana"),
    path("accounts/api-token/", api_token, name="api-token"),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("apps.accounts.urls_api")),
    path("api/v1/", include("apps.scenarios.urls_api")),
]
