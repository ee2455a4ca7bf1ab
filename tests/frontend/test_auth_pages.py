"""Sign in, sign out and password reset pages (frontend/views/auth.py)."""

import re

import pytest
from django.core import mail

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_page_renders_accessible_form(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_username">Email</label>' in html
    assert '<label for="id_password">Password</label>' in html
    assert 'type="email"' in html


def test_sign_in_with_email_lands_on_the_only_hospital(client, world):
    response = client.post("/accounts/login/", {"username": world.doctor_a.email, "password": PASSWORD})
    assert response.status_code == 302
    response = client.get(response["Location"])
    assert response["Location"] == "/h/st-anne/"


def test_wrong_password_is_refused_with_a_message(client, world):
    response = client.post("/accounts/login/", {"username": world.doctor_a.email, "password": "nope-nope-nope"})
    assert response.status_code == 200
    assert "That email and password do not match an account" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_sign_out_is_post_only_and_ends_the_session(client, world):
    client.force_login(world.doctor_a)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session


def test_password_reset_round_trip(client, world):
    response = client.post("/accounts/password-reset/", {"email": world.patient_a.email})
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/password-reset/\S+/\S+/)", mail.outbox[0].body).group(1)

    form = client.get(link, follow=True)
    assert "Choose a new password" in form.content.decode()
    new_password = "a-much-longer-secret-42"
    done = client.post(form.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password})
    assert done["Location"] == "/accounts/password-reset/done/"
    assert client.login(username=world.patient_a.email, password=new_password)


def test_password_reset_for_unknown_email_looks_the_same_and_sends_nothing(client, world):
    response = client.post("/accounts/password-reset/", {"email": "nobody@example.org"})
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert mail.outbox == []


def test_used_reset_link_says_so(client, world):
    client.post("/accounts/password-reset/", {"email": world.patient_a.email})
    link = re.search(r"http://testserver(/accounts/password-reset/\S+/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    client.post(form.redirect_chain[-1][0], {"new_password1": "another-long-secret-7", "new_password2": "another-long-secret-7"})
    again = client.get(link, follow=True)
    assert "This link no longer works" in again.content.decode()
