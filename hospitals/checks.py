"""System checks (`manage.py check [--deploy]`, and every command that runs them, `migrate` among them) for
what the hospitals app relies on."""

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

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


@register("email", deploy=True)
def check_mail_relay_is_named(app_configs, **kwargs):
    """SMTP is production's default backend; with no relay named it mails localhost:25, where there is
    often nothing, and every invitation and reset then fails with only a line in the log."""
    warnings = []
    if settings.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend" and not getattr(
            settings, "EMAIL_HOST_CONFIGURED", True):
        warnings.append(Warning(
            "EMAIL_HOST is not set: invitations and password resets are sent to an SMTP server on localhost:25.",
            hint="Set EMAIL_HOST (and EMAIL_PORT, EMAIL_USE_TLS, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD as the relay "
                 "needs); set EMAIL_HOST=localhost if a mail server does run there.",
            id="hospitals.W002",
        ))
    if settings.DEFAULT_FROM_EMAIL.rstrip(">").endswith("@localhost"):
        warnings.append(Warning(
            f"DEFAULT_FROM_EMAIL is {settings.DEFAULT_FROM_EMAIL}: mail relays often refuse a sender at localhost.",
            hint="Set DEFAULT_FROM_EMAIL to an address of the hospital's or the operator's domain.",
            id="hospitals.W003",
        ))
    return warnings


@register("security")
def check_master_keys_are_usable(app_configs, **kwargs):
    """The master key (and, during a rotation, the previous one) decodes to a key. A wrong one would let the
    processes start and fail at the first new hospital or upload; `openssl rand -hex 32` is the usual slip."""
    from hospitals import keys

    try:
        keys.known_master_keys()
    except ImproperlyConfigured as problem:
        return [Error(str(problem), hint="Generate one with `openssl rand -base64 32` (base64 of 32 random bytes).",
                      id="hospitals.E001")]
    return []
