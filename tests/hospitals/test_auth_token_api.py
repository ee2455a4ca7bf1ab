import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import PASSWORD, make_user
from tests.hospitals.conftest import url

pytestmark = pytest.mark.django_db

TOKEN = url("auth", "token")


@pytest.fixture(autouse=True)
def _forget_failed_logins(world):
    """The failure counter lives in the shared cache (Redis) and would outlive the test database."""
    from django.contrib.auth import get_user_model

    from hospitals.accounts import reset_login_failures

    yield
    for email in [*get_user_model().objects.values_list("email", flat=True), "nobody@st-anne.example"]:
        reset_login_failures(email)


def test_token_for_email_and_password_authenticates_the_api(world):
    client = APIClient()
    response = client.post(TOKEN, {"email": "Doctor1@ST-ANNE.example", "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    assert Token.objects.get(key=token).user == world.doctor_a

    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = client.get(url("me"))
    assert me.status_code == 200 and me.json()["user"]["email"] == "doctor1@st-anne.example"
    assert client.get(url("hospitals", world.a.slug, "patients")).status_code == 200
    assert client.get(url("hospitals", world.b.slug, "patients")).status_code == 404


def test_the_same_token_is_returned_until_revoked(world):
    client = APIClient()
    first = client.post(TOKEN, {"email": "doctor1@st-anne.example", "password": PASSWORD}).json()["token"]
    second = client.post(TOKEN, {"email": "doctor1@st-anne.example", "password": PASSWORD}).json()["token"]
    assert first == second
    client.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    assert client.delete(TOKEN).status_code == 204
    assert client.get(url("me")).status_code == 401


@pytest.mark.parametrize(
    "email, password",
    [("doctor1@st-anne.example", "wrong-password-1"), ("nobody@st-anne.example", PASSWORD)],
)
def test_wrong_credentials_say_the_same_thing(world, email, password):
    response = APIClient().post(TOKEN, {"email": email, "password": password})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_credentials", "detail": "The email address or password is not correct."}
    assert not Token.objects.exists()


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


def test_repeated_failures_lock_the_email_for_a_while(world, monkeypatch):
    from hospitals import accounts

    LOGIN_MAX_FAILURES = 3  # each attempt costs an Argon2 hash; three show the rule as well as ten
    monkeypatch.setattr(accounts, "LOGIN_MAX_FAILURES", LOGIN_MAX_FAILURES)
    client = APIClient()
    for _ in range(LOGIN_MAX_FAILURES):
        assert client.post(TOKEN, {"email": "doctor2@st-anne.example", "password": "guess-123456"}).status_code == 400
    # Now even the right password is refused, and the answer says why.
    locked = client.post(TOKEN, {"email": "Doctor2@st-anne.example", "password": PASSWORD})
    assert locked.status_code == 429 and locked.json()["error"] == "too_many_attempts"
    # Other accounts are unaffected.
    assert client.post(TOKEN, {"email": "doctor1@st-anne.example", "password": PASSWORD}).status_code == 200


def test_a_success_clears_earlier_failures(world, monkeypatch):
    from hospitals import accounts

    LOGIN_MAX_FAILURES = 3
    monkeypatch.setattr(accounts, "LOGIN_MAX_FAILURES", LOGIN_MAX_FAILURES)
    client = APIClient()
    for _ in range(LOGIN_MAX_FAILURES - 1):
        client.post(TOKEN, {"email": "doctor2@st-anne.example", "password": "guess-123456"})
    assert client.post(TOKEN, {"email": "doctor2@st-anne.example", "password": PASSWORD}).status_code == 200
    assert client.post(TOKEN, {"email": "doctor2@st-anne.example", "password": "guess-123456"}).status_code == 400
    assert client.post(TOKEN, {"email": "doctor2@st-anne.example", "password": PASSWORD}).status_code == 200
