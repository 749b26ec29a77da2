from django.urls import include, path

from apps.accounts import console
from apps.accounts.views import api_token, join, workspace_home
from apps.progress import cohorts
from apps.progress import views as learn
from apps.scenarios import catalog
from apps.scenarios import views as labs
from apps.scenarios.grafana import lab_grafana
from apps.tutorials import authoring
from apps.tutorials import views as tutorials
from sandbox.spec import CATEGORIES

# One literal route per category (one name): an unknown category is simply not a route.
catalog_patterns = [
    path("", catalog.catalog, name="catalog"),
    *(
        path(f"{key}/", catalog.catalog_category, {"category": key}, name="catalog-category")
        for key in CATEGORIES
    ),
    path("scenarios/<slug:slug>/", catalog.catalog_scenario, name="catalog-scenario"),
]

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
    path("authoring/", authoring.authoring, name="authoring"),
    path("authoring/upload/", authoring.upload, name="authoring-upload"),
    path("authoring/new/", authoring.edit, name="authoring-new"),
    path("authoring/<slug:slug>/edit/", authoring.edit, name="authoring-edit"),
    path("authoring/<slug:slug>/delete/", authoring.delete, name="authoring-delete"),
    path("tutorials/", tutorials.tutorials, name="tutorials"),
    path("tutorials/<slug:slug>/", tutorials.tutorial, name="tutorial"),
    path("learn/", learn.dashboard, name="learn-dashboard"),
    path("learn/<slug:slug>/", learn.learn, name="learn"),
    path("learn/<slug:slug>/enrol/", learn.enrol, name="learn-enrol"),
    path("learn/<slug:slug>/guide/", learn.guide, name="learn-guide"),
    path("learn/<slug:slug>/lab/", learn.lab, name="learn-lab"),
    path("learn/<slug:slug>/answer/", learn.answer, name="learn-answer"),
    path("cohorts/", cohorts.cohorts, name="cohorts"),
    path("cohorts/<int:cohort_id>/", cohorts.cohort, name="cohort"),
    path("cohorts/<int:cohort_id>/delete/", cohorts.cohort_delete_view, name="cohort-delete"),
    path("cohorts/<int:cohort_id>/members/", cohorts.cohort_members, name="cohort-members"),
    path(
        "cohorts/<int:cohort_id>/members/<int:learner_id>/remove/",
        cohorts.cohort_member_remove_view,
        name="cohort-member-remove",
    ),
    path("cohorts/<int:cohort_id>/assignments/", cohorts.cohort_assign, name="cohort-assign"),
    path(
        "cohorts/<int:cohort_id>/assignments/<int:assignment_id>/remove/",
        cohorts.cohort_unassign,
        name="cohort-unassign",
    ),
    path(
        "cohorts/<int:cohort_id>/tutorials/<slug:slug>/",
        cohorts.cohort_progress,
        name="cohort-progress",
    ),
    path(
        "cohorts/<int:cohort_id>/tutorials/<slug:slug>/matrix/",
        cohorts.cohort_progress_matrix,
        name="cohort-progress-matrix",
    ),
    path(
        "cohorts/<int:cohort_id>/tutorials/<slug:slug>/export.csv",
        cohorts.cohort_progress_csv,
        name="cohort-progress-csv",
    ),
    path("cohorts/<int:cohort_id>/drills/", cohorts.cohort_drill_start, name="cohort-drills"),
    path(
        "cohorts/<int:cohort_id>/drills/<int:drill_id>/",
        cohorts.cohort_drill,
        name="cohort-drill",
    ),
    path(
        "cohorts/<int:cohort_id>/drills/<int:drill_id>/runs/",
        cohorts.cohort_drill_runs,
        name="cohort-drill-runs",
    ),
    path(
        "cohorts/<int:cohort_id>/drills/<int:drill_id>/end/",
        cohorts.cohort_drill_end,
        name="cohort-drill-end",
    ),
    path("drills/runs/<int:run_id>/detected/", learn.drill_detected, name="drill-detected"),
    path("catalog/", include(catalog_patterns)),
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
    path("api/v1/", include("apps.progress.urls_api")),
]
