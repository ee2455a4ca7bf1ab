"""The brake on password guessing, shared by the sign-in page and the API token endpoint.

Failed sign-ins are counted in the cache (Redis in services mode, so every web process sees the same
counts) per account (the normalised email, whether or not an account has it) and per client address.
A window opens at the first failure and lasts `LOGIN_FAILURE_WINDOW_S`; once an account has had
`LOGIN_FAILURE_LIMIT` failures in it, or an address `LOGIN_ADDRESS_FAILURE_LIMIT`, further attempts are
refused without checking the password until the window closes. The account limit stops an online
guesser after a handful of tries; the higher address limit stops one client trying a few passwords
against many accounts. Counting by email rather than by user answers unknown and real accounts alike,
so the refusal tells nobody which emails have an account.

Cache keys and logs carry a keyed digest of the email or address, never the text typed.
"""

import logging
import math
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.utils.crypto import salted_hmac

from hospitals.audit import client_address, record_audit
from hospitals.emails import email_key
from hospitals.errors import DomainError

log = logging.getLogger(__name__)

_PREFIX = "neurofed:signin"


class TooManyAttempts(DomainError):
    """A sign-in refused by the brake; `retry_after` is the number of seconds until the window closes."""

    def __init__(self, detail: str, retry_after: int):
        super().__init__("too_many_attempts", detail, status=429)
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Counter:
    scope: str  # "account" or "address"
    digest: str
    limit: int

    @property
    def key(self) -> str:
        return f"{_PREFIX}:{self.scope}:{self.digest}"

    @property
    def since_key(self) -> str:
        return self.key + ":since"


def _digest(scope: str, value: str) -> str:
    # Keyed, so a leaked cache or log cannot be reversed by hashing a list of likely emails.
    return salted_hmac(f"neurofed.throttle.{scope}", value).hexdigest()[:32]


def _window() -> int:
    return settings.LOGIN_FAILURE_WINDOW_S


def _account(email: str) -> _Counter:
    return _Counter("account", _digest("account", email_key(email)), settings.LOGIN_FAILURE_LIMIT)


def _counters(request, email: str) -> list[_Counter]:
    counters = [_account(email)]
    address = client_address(request)
    if address:
        counters.append(_Counter("address", _digest("address", address), settings.LOGIN_ADDRESS_FAILURE_LIMIT))
    return counters


def _seconds_left(counter: _Counter) -> int:
    since = cache.get(counter.since_key)
    if since is None:  # evicted or expired just now: the whole window is the honest upper bound
        return _window()
    return max(1, math.ceil(since + _window() - time.time()))


def _refusal(counter: _Counter) -> TooManyAttempts:
    seconds = _seconds_left(counter)
    minutes = math.ceil(seconds / 60)
    wait = f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"
    if counter.scope == "account":
        detail = f"Too many failed sign-ins for this account. Try again in {wait} or reset your password."
    else:
        detail = f"Too many failed sign-ins from this network address. Try again in {wait}."
    return TooManyAttempts(detail, seconds)


@dataclass
class Attempt:
    """One sign-in attempt in progress: the counters it was counted in, and the count each reached."""

    request: object
    counts: list[tuple[_Counter, int]] = field(default_factory=list)


def begin_attempt(request, email: str) -> Attempt:
    """Count one sign-in attempt for the email and the client, or raise TooManyAttempts.

    The attempt is counted before the password is checked, as a failure until `attempt_succeeded` says
    otherwise: a burst of parallel requests then cannot all slip past the limit while the first ones
    are still hashing.
    """
    counters = _counters(request, email)
    counts = cache.get_many([c.key for c in counters])
    for counter in counters:
        if counts.get(counter.key, 0) >= counter.limit:
            raise _refusal(counter)
    attempt = Attempt(request)
    window = _window()
    for counter in counters:
        cache.add(counter.since_key, time.time(), window)
        cache.add(counter.key, 0, window)
        try:
            count = cache.incr(counter.key)
        except ValueError:  # the window closed between add and incr
            cache.set(counter.since_key, time.time(), window)
            cache.set(counter.key, 1, window)
            count = 1
        if count > counter.limit:  # lost a race with parallel attempts
            # Refused unchecked, so it is no failure: give back what this attempt took from every count.
            _give_back([counter, *(taken for taken, _ in attempt.counts)])
            raise _refusal(counter)
        attempt.counts.append((counter, count))
    return attempt


def _give_back(counters) -> None:
    for counter in counters:
        try:
            cache.decr(counter.key)
        except ValueError:  # the window closed meanwhile: nothing left to give back
            pass


def attempt_failed(attempt: Attempt, user=None) -> None:
    """The password was wrong: the attempt stays counted, and the one that reaches a limit is recorded.

    `user` is the account with this email, if there is one, so that its hospitals' trails show the lock.
    """
    for counter, count in attempt.counts:
        if count != counter.limit:
            continue
        if counter.scope == "account" and user is not None:
            log.warning("sign-in locked for user %s after %s failures", user.pk, counter.limit)
            detail = f"{counter.limit} failed sign-ins; refused for up to {math.ceil(_window() / 60)} min"
            for membership in user.memberships.select_related("hospital"):
                record_audit(
                    actor=None, hospital=membership.hospital, action="account.sign_in_locked",
                    object_type="user", object_id=user.pk, request=attempt.request, detail=detail,
                )
        else:
            log.warning("sign-in locked for %s %s after %s failures", counter.scope, counter.digest, counter.limit)


def attempt_succeeded(attempt: Attempt) -> None:
    """The password was right: the account starts afresh, and the client's attempt was not a failure."""
    for counter, _count in attempt.counts:
        if counter.scope == "account":
            cache.delete_many([counter.key, counter.since_key])
        else:
            _give_back([counter])


def forget(email: str = "", address: str = "") -> None:
    """Lift the brake for an email or an address (after a password reset; between tests)."""
    counters = []
    if email:
        counters.append(_account(email))
    if address:
        counters.append(_Counter("address", _digest("address", address), 0))
    cache.delete_many([key for c in counters for key in (c.key, c.since_key)])
    cache.delete_many(_reset_mail_keys(email, address))


# --- password-reset mails -----------------------------------------------------------------------------

_RESET_PREFIX = "neurofed:reset-mail"
_RESET_WINDOW_S = 60 * 60


def _reset_mail_keys(email: str = "", address: str = "") -> list[str]:
    keys = []
    if email:
        keys.append(f"{_RESET_PREFIX}:account:{_digest('account', email.strip().lower())}")
    if address:
        keys.append(f"{_RESET_PREFIX}:address:{_digest('address', address)}")
    return keys


def reset_mail_allowed(request, email: str) -> bool:
    """Whether a password-reset mail may go to this email now, from this client.

    At most PASSWORD_RESET_MAILS_PER_HOUR to one email, and ten times that from one client address:
    anyone may ask for a reset of any address, and without a limit a stranger could fill a patient's
    mailbox, or the hospital's mail relay, with them. The page looks the same either way, so the limit
    tells nobody whether the email has an account.
    """
    limit = settings.PASSWORD_RESET_MAILS_PER_HOUR
    address = client_address(request) or ""
    allowed = True
    for key, most in zip(_reset_mail_keys(email, address), (limit, limit * 10)):
        cache.add(key, 0, _RESET_WINDOW_S)
        try:
            count = cache.incr(key)
        except ValueError:  # the window closed between add and incr
            cache.set(key, 1, _RESET_WINDOW_S)
            count = 1
        allowed = allowed and count <= most
    return allowed
