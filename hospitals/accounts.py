"""Signing in by email, with a brake on password guessing.

Each account is looked up by email (case-insensitive) and checked by Django's authentication backends
(Argon2). Failed attempts for one email are counted in the cache; after `LOGIN_MAX_FAILURES` within
`LOGIN_FAILURE_WINDOW` seconds that email is refused for the rest of the window, whatever the password,
so an online guesser gets a handful of tries per quarter hour instead of thousands.
"""

import hashlib

from django.contrib.auth import authenticate, get_user_model
from django.core.cache import cache

from hospitals.errors import DomainError

LOGIN_MAX_FAILURES = 10
LOGIN_FAILURE_WINDOW = 15 * 60


def _failure_key(email: str) -> str:
    # Hashed so the cache holds no email addresses.
    return "neurofed:login-failures:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def authenticate_by_email(request, email: str, password: str):
    """The active user with this email and password, or a DomainError (400 wrong, 429 locked)."""
    key = _failure_key(email)
    if cache.get(key, 0) >= LOGIN_MAX_FAILURES:
        raise DomainError(
            "too_many_attempts",
            "Too many failed sign-ins for this email address; wait 15 minutes or reset the password.",
            status=429,
        )
    account = get_user_model().objects.filter(email__iexact=email.strip()).order_by("pk").first()
    # With no such account authenticate() still hashes once, so timing does not tell which emails exist.
    username = account.get_username() if account is not None else email
    user = authenticate(request, username=username, password=password)
    if user is None:
        cache.add(key, 0, LOGIN_FAILURE_WINDOW)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, LOGIN_FAILURE_WINDOW)
        raise DomainError("invalid_credentials", "The email address or password is not correct.")
    cache.delete(key)
    return user


def reset_login_failures(email: str) -> None:
    """Lift the brake for one email, e.g. after its password was reset."""
    cache.delete(_failure_key(email))
