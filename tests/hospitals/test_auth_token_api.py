import logging
import time

import pytest
from rest_framework.test import APIClient

from hospitals.api_tokens import token_digest
from hospitals.models import ApiToken, AuditEvent
from tests.factories import PASSWORD, make_user
from tests.hospitals.conftest import url

pytestmark = pytest.mark.django_db

TOKEN = url("auth", "token")


@pytest.fixture(autouse=True)
def _forget_failed_logins(world, forget_sign_in_brakes):
    forget_sign_in_brakes.emails.append("nobody@st-anne.example")
    forget_sign_in_brakes.addresses.extend(["10.9.9.9", "10.9.9.10"])
    yield


def test_token_for_email_and_password_authenticates_the_api(world):
    client = APIClient()
    response = client.post(TOKEN, {"email": "Doctor1@ST-ANNE.example", "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    # Kept as its digest: the database holds no token anyone could send.
    assert ApiToken.objects.get(digest=token_digest(token)).user == world.doctor_a
    assert not ApiToken.objects.filter(digest=token).exists()

    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = client.get(url("me"))
    assert me.status_code == 200 and me.json()["user"]["email"] == "doctor1@st-anne.example"
    assert client.get(url("hospitals", world.a.slug, "patients")).status_code == 200
    assert client.get(url("hospitals", world.b.slug, "patients")).status_code == 404


def test_each_client_gets_a_token_of_its_own_and_revoking_one_leaves_the_others(world):
    """A digest cannot be handed out again: each sign-in issues a new token, and DELETE ends the one sent."""
    first_client, second_client = APIClient(), APIClient()
    first = first_client.post(TOKEN, {"email": "doctor1@st-anne.example", "password": PASSWORD}).json()["token"]
    second = second_client.post(TOKEN, {"email": "doctor1@st-anne.example", "password": PASSWORD}).json()["token"]
    assert first != second
    first_client.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    second_client.credentials(HTTP_AUTHORIZATION=f"Token {second}")
    assert first_client.delete(TOKEN).status_code == 204
    assert first_client.get(url("me")).status_code == 401
    assert second_client.get(url("me")).status_code == 200


def test_an_account_keeps_its_newest_tokens_only(world, monkeypatch):
    from hospitals import api_tokens

    monkeypatch.setattr(api_tokens, "MAX_TOKENS_PER_ACCOUNT", 3)
    secrets = [api_tokens.issue_token(world.doctor_a)[1] for _ in range(5)]
    kept = set(ApiToken.objects.filter(user=world.doctor_a).values_list("digest", flat=True))
    assert kept == {token_digest(secret) for secret in secrets[2:]}


def test_a_token_kept_in_clear_before_is_digested_by_the_migration_and_still_works(world):
    """Tokens DRF stored in clear (before migration 0008): their holders go on signing in with them."""
    from importlib import import_module

    from django.apps import apps as global_apps
    from rest_framework.authtoken.models import Token

    clear = Token.objects.create(user=world.doctor_a).key
    import_module("hospitals.migrations.0008_api_tokens").digest_the_tokens_in_clear(global_apps, None)
    assert not Token.objects.exists()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {clear}")
    assert client.get(url("me")).json()["user"]["email"] == world.doctor_a.email


@pytest.mark.parametrize(
    "email, password",
    [("doctor1@st-anne.example", "wrong-password-1"), ("nobody@st-anne.example", PASSWORD)],
)
def test_wrong_credentials_say_the_same_thing(world, email, password):
    response = APIClient().post(TOKEN, {"email": email, "password": password})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_credentials", "detail": "The email address or password is not correct."}
    assert not ApiToken.objects.exists()


def test_inactive_account_gets_no_token(world):
    make_user("gone@example.org", is_active=False)
    assert APIClient().post(TOKEN, {"email": "gone@example.org", "password": PASSWORD}).status_code == 400


def test_missing_fields_are_named(world):
    response = APIClient().post(TOKEN, {"email": "not-an-email"})
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"email", "password"}


def test_bad_token_is_401(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0000000000000000000000000000000000000000")
    assert client.get(url("me")).status_code == 401


def test_passwords_are_hashed_with_argon2(world):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("fresh@example.org", "fresh@example.org", "plum-harbour-381")
    assert user.password.startswith("argon2$argon2id$")


LOCKED = {
    "error": "too_many_attempts",
    "detail": "Too many failed sign-ins for this account. Try again in 15 minutes or reset your password.",
}


def fail(client, email, times, **extra):
    for _ in range(times):
        response = client.post(TOKEN, {"email": email, "password": "guess-123456"}, **extra)
        assert response.status_code == 400, response.content


def test_five_failures_lock_the_account_even_against_the_right_password(world):
    client = APIClient()
    fail(client, "doctor2@st-anne.example", 5)
    locked = client.post(TOKEN, {"email": "Doctor2@ST-ANNE.example ", "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.json() == LOCKED
    assert 890 <= int(locked["Retry-After"]) <= 900
    assert not ApiToken.objects.filter(user=world.doctor_a2).exists()
    # Another account from the same client is not held.
    assert client.post(TOKEN, {"email": "doctor1@st-anne.example", "password": PASSWORD}).status_code == 200


def test_four_failures_still_let_the_right_password_in(world):
    client = APIClient()
    fail(client, "doctor2@st-anne.example", 4)
    assert client.post(TOKEN, {"email": "doctor2@st-anne.example", "password": PASSWORD}).status_code == 200


def test_an_unknown_email_is_locked_with_the_same_answer(world):
    client = APIClient()
    fail(client, "nobody@st-anne.example", 5)
    locked = client.post(TOKEN, {"email": "nobody@st-anne.example", "password": PASSWORD})
    assert locked.status_code == 429 and locked.json() == LOCKED
    assert 890 <= int(locked["Retry-After"]) <= 900


def test_a_success_clears_earlier_failures(world):
    client = APIClient()
    fail(client, "doctor2@st-anne.example", 4)
    assert client.post(TOKEN, {"email": "doctor2@st-anne.example", "password": PASSWORD}).status_code == 200
    fail(client, "doctor2@st-anne.example", 4)
    assert client.post(TOKEN, {"email": "doctor2@st-anne.example", "password": PASSWORD}).status_code == 200


def test_the_lock_ends_with_the_window(world, settings):
    settings.LOGIN_FAILURE_LIMIT = 2  # each failure costs an Argon2 hash; both must fall inside the window
    settings.LOGIN_FAILURE_WINDOW_S = 3
    client = APIClient()
    fail(client, "doctor2@st-anne.example", 2)
    locked = client.post(TOKEN, {"email": "doctor2@st-anne.example", "password": PASSWORD})
    assert locked.status_code == 429
    assert "Try again in 1 minute " in locked.json()["detail"]
    wait = int(locked["Retry-After"])
    assert 1 <= wait <= 3
    time.sleep(wait + 0.1)
    assert client.post(TOKEN, {"email": "doctor2@st-anne.example", "password": PASSWORD}).status_code == 200


def test_one_address_trying_many_accounts_is_stopped(world, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 3
    client = APIClient()
    for email in ("admin@st-anne.example", "doctor2@st-anne.example", "nobody@st-anne.example"):
        fail(client, email, 1, REMOTE_ADDR="10.9.9.9")
    # No account has reached its own limit, yet this client may not try a fourth password.
    refused = client.post(TOKEN, {"email": "doctor1@st-anne.example", "password": PASSWORD}, REMOTE_ADDR="10.9.9.9")
    assert refused.status_code == 429 and refused.json()["error"] == "too_many_attempts"
    assert refused.json()["detail"].startswith("Too many failed sign-ins from this network address.")
    assert int(refused["Retry-After"]) > 0
    # The same accounts from another address are not held.
    ok = client.post(TOKEN, {"email": "doctor2@st-anne.example", "password": PASSWORD}, REMOTE_ADDR="10.9.9.10")
    assert ok.status_code == 200


def test_successes_do_not_use_up_the_address_limit(world, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 2
    client = APIClient()
    right = {"email": "doctor1@st-anne.example", "password": PASSWORD}
    for _ in range(3):
        assert client.post(TOKEN, right, REMOTE_ADDR="10.9.9.9").status_code == 200


def test_a_lock_is_logged_and_audited_by_id_never_by_email(world, caplog):
    caplog.set_level(logging.WARNING, logger="hospitals.throttle")
    client = APIClient()
    fail(client, "Doctor2@st-anne.example", 5, REMOTE_ADDR="10.9.9.9")
    fail(client, "nobody@st-anne.example", 5, REMOTE_ADDR="10.9.9.9")

    messages = [record.getMessage() for record in caplog.records if record.name == "hospitals.throttle"]
    assert len(messages) == 2, messages
    assert f"user {world.doctor_a2.pk} " in messages[0]
    assert messages[1].startswith("sign-in locked for account ")
    assert not any("@" in m or "doctor2" in m.lower() or "nobody" in m or "10.9.9.9" in m for m in messages)

    event = AuditEvent.objects.get(action="account.sign_in_locked")
    assert event.hospital_id == world.a.id and event.object_id == str(world.doctor_a2.pk)
    assert event.actor_id is None and event.client_address == "10.9.9.9"
    assert "@" not in event.detail


def test_attempts_refused_in_a_burst_charge_no_account(world, settings):
    """Many clients' attempts race through one address's count: whether refused before counting or after
    losing the race, a refused attempt leaves its account's count where it was."""
    import threading

    from django.core.cache import cache
    from django.test import RequestFactory

    from hospitals import throttle

    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 4
    emails = [f"burst{n}@st-anne.example" for n in range(16)]
    start = threading.Barrier(len(emails))
    refused = []

    def attempt(email):
        request = RequestFactory().post("/", REMOTE_ADDR="10.9.9.9")
        start.wait()
        try:
            throttle.begin_attempt(request, email)
        except throttle.TooManyAttempts:
            refused.append(email)

    threads = [threading.Thread(target=attempt, args=(email,)) for email in emails]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(refused) == len(emails) - 4
        for email in emails:
            assert cache.get(throttle._account(email).key, 0) == (0 if email in refused else 1), email
        assert cache.get(throttle._counters(RequestFactory().post("/", REMOTE_ADDR="10.9.9.9"), emails[0])[1].key) == 4
    finally:
        for email in emails:
            throttle.forget(email=email)


def test_a_revoked_token_still_sent_does_not_stand_in_the_way_of_a_new_one(world):
    client = APIClient()
    old = client.post(TOKEN, {"email": world.doctor_a.email, "password": PASSWORD}, format="json").json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    assert client.delete(TOKEN).status_code == 204
    # The client still sends the revoked token with its next request for a token.
    renewed = client.post(TOKEN, {"email": world.doctor_a.email, "password": PASSWORD}, format="json")
    assert renewed.status_code == 200 and renewed.json()["token"] != old
    # Revoking still needs a valid token.
    assert client.delete(TOKEN).status_code == 401
