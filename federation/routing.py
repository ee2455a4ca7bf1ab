"""Websocket routes of this app."""

from django.urls import path

from federation.consumers import FederatedRunConsumer

websocket_urlpatterns = [
    path("ws/federation/runs/<str:run_id>/", FederatedRunConsumer.as_asgi()),
]
