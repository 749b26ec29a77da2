from django.urls import path

from apps.progress import api

urlpatterns = [
    path("enrolments/", api.EnrolmentListApi.as_view(), name="api-enrolments"),
    path("enrolments/<int:pk>/", api.EnrolmentDetailApi.as_view(), name="api-enrolment"),
    path(
        "enrolments/<int:pk>/answers/",
        api.EnrolmentAnswerApi.as_view(),
        name="api-enrolment-answers",
    ),
    path("cohorts/", api.CohortListApi.as_view(), name="api-cohorts"),
    path("cohorts/<int:pk>/progress/", api.CohortProgressApi.as_view(), name="api-cohort-progress"),
]
