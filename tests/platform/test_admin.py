"""The Django admin (platform/urls.py): the operator's tool, which must not hand out people's API tokens."""

import pytest
from rest_framework.authtoken.models import Token

from hospitals.api_tokens import issue_token
from hospitals.models import ApiToken
from tests.factories import make_user


@pytest.fixture
def operator(db):
    return make_user("operator@neurofed.example", is_superuser=True, is_staff=True)


def test_the_operator_cannot_list_or_open_anyones_api_token(client, world, operator):
    token = Token.objects.create(user=world.doctor_a)
    client.force_login(operator)
    index = client.get("/admin/")
    assert index.status_code == 200 and "Users" in index.content.decode()
    assert "authtoken" not in index.content.decode() and "Tokens" not in index.content.decode()
    for url in ("/admin/authtoken/tokenproxy/", f"/admin/authtoken/tokenproxy/{world.doctor_a.pk}/change/",
                "/admin/authtoken/token/", "/admin/hospitals/apitoken/"):
        response = client.get(url, follow=True)
        assert token.key not in response.content.decode(), url
        assert response.status_code == 404, url


def test_the_operator_sees_no_member_of_any_hospital_and_sets_no_members_password(client, world, operator):
    """A member's account in the admin would name patients, and a password set there would let the
    operator sign in as a doctor and read the hospital's records."""
    client.force_login(operator)
    listing = client.get("/admin/auth/user/").content.decode()
    assert "operator@neurofed.example" in listing
    for member in (world.patient_a, world.doctor_a, world.admin_a):
        assert member.email not in listing
        change = client.get(f"/admin/auth/user/{member.pk}/change/", follow=True)
        assert member.email not in change.content.decode()
        response = client.post(f"/admin/auth/user/{member.pk}/password/",
                               {"password1": "taken-over-2026-x", "password2": "taken-over-2026-x"})
        assert response.status_code == 404
        member.refresh_from_db()
        assert not member.check_password("taken-over-2026-x")
    assert client.get("/admin/auth/group/").status_code == 404


def test_an_account_added_in_the_admin_is_an_operator_who_signs_in_by_email(client, world, operator):
    from django.contrib.auth import get_user_model

    client.force_login(operator)
    secret = "a-long-operator-secret-2026"
    response = client.post("/admin/auth/user/add/", {"email": "Second.Operator@NeuroFed.example",
                                                     "password1": secret, "password2": secret})
    assert response.status_code == 302, response.content.decode()[:2000]
    added = get_user_model().objects.get(email="second.operator@neurofed.example")
    assert added.is_staff and added.is_superuser and added.username == added.email
    assert client.get(f"/admin/auth/user/{added.pk}/change/").status_code == 200
    # Taken addresses get one sentence, whoever holds them: the admin does not tell who has an account.
    for taken in (world.doctor_a.email, "second.operator@neurofed.example"):
        refused = client.post("/admin/auth/user/add/", {"email": taken, "password1": secret, "password2": secret})
        assert "This address cannot be used for a new operator account." in refused.content.decode()
        assert "already exists" not in refused.content.decode()


def test_a_password_set_in_the_admin_ends_the_accounts_api_tokens(client, operator):
    """A token works like the password it was minted with, as on the site's own password page."""
    second = make_user("second.operator@neurofed.example", is_superuser=True, is_staff=True)
    issue_token(second), issue_token(operator)
    client.force_login(operator)
    refused = client.post(f"/admin/auth/user/{second.pk}/password/", {"password1": "short", "password2": "other"})
    assert refused.status_code == 200 and ApiToken.objects.filter(user=second).exists()
    new = "a-new-operator-secret-2026"
    assert client.post(f"/admin/auth/user/{second.pk}/password/",
                       {"password1": new, "password2": new}).status_code == 302
    assert not ApiToken.objects.filter(user=second).exists()
    assert ApiToken.objects.filter(user=operator).exists()
    # The operator's own, on the admin's "Change password" page.
    from tests.factories import PASSWORD

    assert client.post("/admin/password_change/", {"old_password": PASSWORD, "new_password1": new,
                                                   "new_password2": new}).status_code == 302
    assert not ApiToken.objects.filter(user=operator).exists()
