"""API tokens: issued for an email and password (hospitals/api/views.py), kept only as digests.

Each client that signs in gets a token of its own; a new password ends them all
(hospitals.accounts.password_changed), and DELETE on the token address ends the one it is sent with.
"""

import hashlib
import secrets

from django.db import transaction
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from hospitals.models import ApiToken

# As many tokens as an account keeps: a client that signs in again and again (a script with no memory)
# ends its oldest rather than filling the table.
MAX_TOKENS_PER_ACCOUNT = 20


def token_digest(secret: str) -> str:
    # A plain hash suffices: the secret is 160 random bits, not a password anyone could guess.
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def issue_token(user) -> tuple[ApiToken, str]:
    """A new token for `user` and its secret, which is shown once and kept nowhere."""
    secret = secrets.token_hex(20)
    token = ApiToken.objects.create(user=user, digest=token_digest(secret))
    kept = ApiToken.objects.filter(user=user).order_by("-created_at", "-id").values_list("pk", flat=True)
    ApiToken.objects.filter(user=user).exclude(pk__in=list(kept[:MAX_TOKENS_PER_ACCOUNT])).delete()
    return token, secret


class DigestTokenAuthentication(TokenAuthentication):
    """DRF's `Authorization: Token <secret>` header, looked up by the secret's digest."""

    def authenticate_credentials(self, key):
        token = ApiToken.objects.select_related("user").filter(digest=token_digest(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return token.user, token
