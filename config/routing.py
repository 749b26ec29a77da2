from django.urls import path

from apps.accounts.consumers import OrganisationEventsConsumer
from apps.progress.consumers import ProgressConsumer
from apps.scenarios.consumers import LabSessionConsumer

websocket_urlpatterns = [
    path("ws/events/", OrganisationEventsConsumer.as_asgi()),
    path("ws/labs/<int:session_id>/", LabSessionConsumer.as_asgi()),
    path("ws/progress/", ProgressConsumer.as_asgi()),
]
