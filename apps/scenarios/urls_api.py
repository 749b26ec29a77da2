from django.urls import path

from apps.scenarios import api

urlpatterns = [
    path("labs/", api.LabListApi.as_view(), name="api-labs"),
    path("labs/<int:pk>/", api.LabDetailApi.as_view(), name="api-lab"),
    path("labs/<int:pk>/stop/", api.LabStopApi.as_view(), name="api-lab-stop"),
    path("labs/<int:pk>/extend/", api.LabExtendApi.as_view(), name="api-lab-extend"),
    path("scenarios/", api.ScenarioListApi.as_view(), name="api-scenarios"),
    path("scenarios/<slug:slug>/", api.ScenarioDetailApi.as_view(), name="api-scenario"),
]
