"""Websocket routes of every app, gathered in one list."""

from diagnostics.routing import websocket_urlpatterns as diagnostics_ws
from federation.routing import websocket_urlpatterns as federation_ws

websocket_urlpatterns = [*diagnostics_ws, *federation_ws]
