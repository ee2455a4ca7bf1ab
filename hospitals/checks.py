"""Deployment checks (`manage.py check --deploy`) for what the hospitals app relies on."""

from django.conf import settings
from django.core.checks import Warning, register

# Backends that never deliver: an invitation "sent" through them reaches only a log or a test outbox.
UNDELIVERED_MAIL_BACKENDS = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
}


@register("email", deploy=True)
def check_mail_is_delivered(app_configs, **kwargs):
    if settings.EMAIL_BACKEND not in UNDELIVERED_MAIL_BACKENDS:
        return []
    return [
        Warning(
            f"EMAIL_BACKEND is {settings.EMAIL_BACKEND}: invitations and password resets are not delivered.",
            hint="Set EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST / EMAIL_PORT "
            "(with EMAIL_HOST_USER, EMAIL_HOST_PASSWORD and EMAIL_USE_TLS as the relay needs).",
            id="hospitals.W001",
        )
    ]
