from django.urls import path

from apps.accounts.consumers import OrganisationEventsConsumer
from apps.scenarios.consumers import LabSessionConsumer

websocket_urlpatterns = [
    path("ws/events/", OrganisationEventsConsumer.as_asgi()),
    path("ws/labs/<int:session_id>/", LabSessionConsumer.as_asgi()),
]
