"""Password rules of our own, beside Django's (AUTH_PASSWORD_VALIDATORS)."""

from django.core.exceptions import ValidationError

# Long enough for any passphrase or password manager; every sign-in hashes the password with Argon2,
# and a password of megabytes would make each attempt cost the server that much work.
MAX_PASSWORD_LENGTH = 256


class MaximumLengthValidator:
    def __init__(self, max_length: int = MAX_PASSWORD_LENGTH):
        self.max_length = max_length

    def validate(self, password, user=None):
        if len(password) > self.max_length:
            raise ValidationError(
                "This password is too long: use at most %(max_length)d characters.",
                code="password_too_long",
                params={"max_length": self.max_length},
            )

    def get_help_text(self):
        return f"Your password can have at most {self.max_length} characters."


class NoNulCharacterValidator:
    """A NUL cannot be typed into a sign-in form, and every form refuses one, so a password holding one
    (posted by a script to a page that reads the raw field) would lock its account out until a reset."""

    def validate(self, password, user=None):
        if "\x00" in password:
            raise ValidationError("A password cannot contain a NUL character.", code="password_has_nul")

    def get_help_text(self):
        return "Your password cannot contain a NUL character."
