from django.apps import AppConfig


class FrontendConfig(AppConfig):
    name = "frontend"
    verbose_name = "Web pages"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from frontend.views.invite import forget_another_persons_invitation

        user_logged_in.connect(forget_another_persons_invitation, dispatch_uid="frontend.invitation_of_another")
