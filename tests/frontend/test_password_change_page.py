"""Changing one's password while signed in (/accounts/password/, frontend/views/auth.py)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from hospitals.api_tokens import issue_token
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

URL = "/accounts/password/"
NEW = "a-new-long-passphrase-2026"


def api_status(token) -> int:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api.get("/api/v1/me/").status_code


def change(client, old=PASSWORD, new=NEW, again=NEW):
    return client.post(URL, {"old_password": old, "new_password1": new, "new_password2": again}, follow=True)


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_form_names_every_field(client, world):
    client.force_login(world.owner)
    html = client.get(URL).content.decode()
    for label in ("Old password", "New password", "New password confirmation"):
        assert f">{label}</label>" in html


def test_a_change_keeps_this_sign_in_ends_the_others_and_tells_the_owner(world, mailoutbox):
    _, token = issue_token(world.owner)
    assert api_status(token) == 200
    here, elsewhere = Client(), Client()
    here.login(username=world.owner.email, password=PASSWORD)
    elsewhere.login(username=world.owner.email, password=PASSWORD)
    response = change(here)
    assert response.redirect_chain and "Your password has been changed" in response.content.decode()
    assert get_user_model().objects.get(pk=world.owner.pk).check_password(NEW)
    assert here.get("/h/st-anne/scans/").status_code == 200
    assert elsewhere.get("/h/st-anne/scans/").status_code == 302  # signed out with the old password
    assert api_status(token) == 401
    assert "You were signed out everywhere else" in response.content.decode()
    [message] = mailoutbox
    assert message.to == [world.owner.email] and "/accounts/password-reset/" in message.body


@pytest.mark.parametrize("old, new, again, error", [
    ("not-my-password", NEW, NEW, "Your old password was entered incorrectly"),
    (PASSWORD, NEW, NEW + "x", "The two password fields"),
    (PASSWORD, "short", "short", "too short"),
    (PASSWORD, "patient1@st-anne.example", "patient1@st-anne.example", "too similar to the email address"),
])
def test_a_refused_change_says_why_and_keeps_the_old_password(client, world, mailoutbox, old, new, again, error):
    client.force_login(world.owner)
    response = change(client, old, new, again)
    assert response.status_code == 200 and error in response.content.decode()
    assert get_user_model().objects.get(pk=world.owner.pk).check_password(PASSWORD)
    assert mailoutbox == []


def test_a_weak_new_password_is_marked_on_the_password_not_its_confirmation(client, world):
    client.force_login(world.owner)
    response = change(client, new="short", again="short")
    form = response.context["form"]
    assert "new_password1" in form.errors and "new_password2" not in form.errors


def test_an_old_password_longer_than_any_password_is_refused_without_hashing(client, world, monkeypatch):
    from django.contrib.auth.models import AbstractBaseUser

    checked = []
    original = AbstractBaseUser.check_password
    monkeypatch.setattr(AbstractBaseUser, "check_password",
                        lambda user, raw: checked.append(len(raw)) or original(user, raw))
    client.force_login(world.owner)
    response = change(client, old="x" * 5000)
    assert "Your old password was entered incorrectly" in response.content.decode()
    assert 5000 not in checked
    assert get_user_model().objects.get(pk=world.owner.pk).check_password(PASSWORD)


def test_guessing_the_old_password_is_held_by_the_sign_in_brake(client, world, settings, forget_sign_in_brakes):
    settings.LOGIN_FAILURE_LIMIT = 3
    client.force_login(world.owner)
    for _ in range(3):
        assert "Your old password was entered incorrectly" in change(client, old="guess-" * 3).content.decode()
    held = change(client).content.decode()  # the right password, but the brake holds
    assert "Too many failed sign-ins for this account" in held
    assert get_user_model().objects.get(pk=world.owner.pk).check_password(PASSWORD)
