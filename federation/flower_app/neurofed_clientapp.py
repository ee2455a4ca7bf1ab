"""Names the ClientApp for Flower (the module must assign `app` itself)."""

from federation import client_app as _client_app

app = _client_app.app
