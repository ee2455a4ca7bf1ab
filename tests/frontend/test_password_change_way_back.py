"""The password page lies outside every hospital, so its header has no "My scans": the form itself offers
the way back for someone who opened it by mistake."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_password_page_offers_a_way_back_without_changing_anything(client, world):
    client.force_login(world.owner)
    html = client.get("/accounts/password/").content.decode()
    assert '<a href="/">Keep the current password</a>' in html
    # The way back leads to the patient's own start page.
    assert client.get("/", follow=True).redirect_chain[-1][0] == "/h/st-anne/scans/"
