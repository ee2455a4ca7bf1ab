"""Websocket routes of this app."""

websocket_urlpatterns = []
