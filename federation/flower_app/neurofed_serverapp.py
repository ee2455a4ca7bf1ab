"""Names the ServerApp for Flower (the module must assign `app` itself)."""

from federation import server_app as _server_app

app = _server_app.app
