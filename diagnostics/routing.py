"""Websocket routes of this app."""

from django.urls import path

from diagnostics.consumers import ScanConsumer, WorklistConsumer

websocket_urlpatterns = [
    path("ws/hospitals/<slug:slug>/scans/<str:scan_id>/", ScanConsumer.as_asgi()),
    path("ws/hospitals/<slug:slug>/worklist/", WorklistConsumer.as_asgi()),
]
