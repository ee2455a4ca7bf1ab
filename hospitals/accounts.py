"""Signing in by email, with a brake on password guessing.

Each account is looked up by email (in any letter case: hospitals/emails.py) and checked by Django's authentication backends
(Argon2). The sign-in page and the API token endpoint both come through here, so both are held by the
same brake (hospitals/throttle.py): a handful of failures per account, more per client address, per
`LOGIN_FAILURE_WINDOW_S`, after which attempts are refused without checking the password.
"""

from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import authenticate, get_user, get_user_model

from hospitals import throttle
from hospitals.emails import account_by_email
from hospitals.errors import DomainError
from hospitals.models import ApiToken
from hospitals.passwords import MAX_PASSWORD_LENGTH


def authenticate_by_email(request, email: str, password: str):
    """The active user with this email and password, or a DomainError (400 wrong, 429 too many failures)."""
    attempt = throttle.begin_attempt(request, email)
    account = account_by_email(email)
    # With no such account authenticate() still hashes once, so timing does not tell which emails exist.
    username = account.get_username() if account is not None else email
    # No stored password is longer than the cap: one that is fails without the cost of hashing it.
    too_long = len(password) > MAX_PASSWORD_LENGTH
    user = None if too_long else authenticate(request, username=username, password=password)
    if user is None:
        throttle.attempt_failed(attempt, account)
        raise DomainError("invalid_credentials", "The email address or password is not correct.")
    throttle.attempt_succeeded(attempt)
    return user


def reset_login_failures(email: str) -> None:
    """Lift the brake for one email, e.g. after its password was reset."""
    throttle.forget(email=email)


def password_changed(user) -> None:
    """What a new password ends besides other sessions: the account's API tokens.

    A token works like the password it was minted with. Whoever changes a password to lock out someone
    who had it must lock out their token too; the owner signs in to the API again.
    """
    ApiToken.objects.filter(user=user).delete()


def display_name(user) -> str:
    """How a person is named to colleagues: their full name, else their email."""
    return user.get_full_name() or user.email


def socket_sign_in_ended(scope) -> bool:
    """Whether the session a websocket was opened under no longer signs its user in: signed out in
    another tab, expired, or the password changed since. Read afresh, since the socket's own copy is
    the one from its handshake. A socket opened without a session (a test's communicator) has only the
    access checks."""
    key = getattr(scope.get("session"), "session_key", None)
    if key is None:
        return False
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
    return get_user(SimpleNamespace(session=session)).pk != getattr(scope.get("user"), "pk", None)


def stored_user(user):
    """The account as stored now, if still active; None otherwise.

    A websocket keeps the user its session loaded when it opened, for hours: checks made while it lives
    read the account again, so a deactivated or deleted one is out.
    """
    return get_user_model().objects.filter(pk=getattr(user, "pk", None), is_active=True).first()

