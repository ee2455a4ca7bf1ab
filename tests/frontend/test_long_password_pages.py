"""A password longer than the cap (hospitals.passwords.MAX_PASSWORD_LENGTH) on the pages: no account
chooses one, and the sign-in page refuses one before anything hashes it."""

import pytest
from django.contrib.auth import get_user_model

from hospitals import accounts
from hospitals.models import Role
from hospitals.passwords import MAX_PASSWORD_LENGTH
from hospitals.services import invite_member
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

HUGE = "Long-passphrase-9 " * 300  # 5,400 characters
TOO_LONG = f"This password is too long: use at most {MAX_PASSWORD_LENGTH} characters."


@pytest.fixture(autouse=True)
def _forget_failed_logins(forget_sign_in_brakes):
    yield


def test_an_invitation_cannot_be_accepted_with_an_over_long_password(client, world):
    _invitation, token = invite_member(hospital=world.a, email="new@st-anne.example", role=Role.DOCTOR,
                                       actor=world.admin_a)
    response = client.post(f"/invite/{token}/", {"password": HUGE, "password_again": HUGE})
    assert response.status_code == 200 and TOO_LONG in response.content.decode()
    assert not get_user_model().objects.filter(email="new@st-anne.example").exists()


def test_a_password_cannot_be_changed_to_an_over_long_one(client, world):
    client.force_login(world.owner)
    response = client.post("/accounts/password/", {"old_password": PASSWORD, "new_password1": HUGE,
                                                   "new_password2": HUGE})
    assert response.status_code == 200 and TOO_LONG in response.content.decode()
    assert get_user_model().objects.get(pk=world.owner.pk).check_password(PASSWORD)


def test_the_sign_in_page_refuses_an_over_long_password_without_hashing_it(client, world, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the password was checked against the account")

    monkeypatch.setattr(accounts, "authenticate", refuse)
    assert f'maxlength="{MAX_PASSWORD_LENGTH}"' in client.get("/accounts/login/").content.decode()
    response = client.post("/accounts/login/", {"username": world.doctor_a.email, "password": HUGE})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert f"A password has at most {MAX_PASSWORD_LENGTH} characters" in response.content.decode()
