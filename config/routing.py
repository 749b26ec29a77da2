from django.urls import path

from apps.accounts.consumers import OrganisationEventsConsumer

websocket_urlpatterns = [
    path("ws/events/", OrganisationEventsConsumer.as_asgi()),
]
