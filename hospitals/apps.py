from django.apps import AppConfig


class HospitalsConfig(AppConfig):
    name = "hospitals"
    verbose_name = "Hospitals (tenants)"

    def ready(self):
        from hospitals import checks  # noqa: F401  (registers the deployment checks)
