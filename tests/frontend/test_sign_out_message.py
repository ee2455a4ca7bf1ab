"""Signing out says so on the sign-in page it leads to, which otherwise looks as it did before signing in."""

import pytest

pytestmark = pytest.mark.django_db


def test_signing_out_says_you_have_signed_out(client, world):
    client.force_login(world.owner)
    page = client.post("/accounts/logout/", follow=True)
    assert page.redirect_chain == [("/accounts/login/", 302)]
    html = page.content.decode()
    assert "You have signed out." in html
    assert "_auth_user_id" not in client.session


def test_a_sign_out_sent_by_someone_already_signed_out_claims_nothing(client):
    page = client.post("/accounts/logout/", follow=True)
    assert "You have signed out." not in page.content.decode()
