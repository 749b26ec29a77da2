from django.urls import path

from apps.accounts import api

urlpatterns = [
    path("members/", api.MemberListApi.as_view(), name="api-members"),
    path("members/<int:pk>/", api.MemberDetailApi.as_view(), name="api-member"),
    path("invitations/", api.InvitationListApi.as_view(), name="api-invitations"),
    path("invitations/bulk/", api.InvitationBulkApi.as_view(), name="api-invitations-bulk"),
    path("invitations/links/", api.InvitationLinkApi.as_view(), name="api-invitation-links"),
    path("invitations/<int:pk>/", api.InvitationDetailApi.as_view(), name="api-invitation"),
    path(
        "invitations/<int:pk>/resend/",
        api.InvitationResendApi.as_view(),
        name="api-invitation-resend",
    ),
    path("organisation/", api.OrganisationApi.as_view(), name="api-organisation"),
    path("audit-log/", api.AuditLogApi.as_view(), name="api-audit-log"),
]
