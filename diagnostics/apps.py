from django.apps import AppConfig


class DiagnosticsConfig(AppConfig):
    name = "diagnostics"
    verbose_name = "Diagnostics"

    def ready(self):
        # platform/ has no __init__.py that would load the Celery app, and a task sent before the app
        # exists would go to Celery's default broker (amqp://localhost) instead of the configured one.
        import neurofed.celery  # noqa: F401
