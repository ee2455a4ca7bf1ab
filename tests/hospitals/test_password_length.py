"""The cap on a password's length (hospitals.passwords): no account gets one longer, and a sign-in with
one is refused before anything hashes it."""

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from hospitals import accounts
from hospitals.passwords import MAX_PASSWORD_LENGTH
from tests.hospitals.conftest import url

pytestmark = pytest.mark.django_db

LONGEST = "Ab3-" * (MAX_PASSWORD_LENGTH // 4)


@pytest.fixture(autouse=True)
def _forget_failed_logins(forget_sign_in_brakes):
    yield


@pytest.fixture
def nothing_hashed(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the password was checked against the account")

    monkeypatch.setattr(accounts, "authenticate", refuse)


def test_a_password_up_to_the_cap_is_allowed_and_one_longer_is_refused_in_plain_words():
    assert len(LONGEST) == MAX_PASSWORD_LENGTH
    validate_password(LONGEST)
    with pytest.raises(ValidationError) as refused:
        validate_password(LONGEST + "x")
    assert refused.value.messages == [f"This password is too long: use at most {MAX_PASSWORD_LENGTH} characters."]


def test_the_token_endpoint_refuses_an_over_long_password_without_hashing_it(world, nothing_hashed):
    response = APIClient().post(url("auth", "token"), {"email": world.doctor_a.email, "password": "x" * 5000})
    assert response.status_code == 400 and response.json()["error"] == "invalid_credentials"
