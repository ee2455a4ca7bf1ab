"""The pages a person lands on when a form or an address cannot be used as it was: a form sent from an
out-of-date page (frontend.views.base.stale_form), a button's address opened by typing it
(frontend.middleware.MethodNotAllowedPageMiddleware)."""

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def stale_post(path, referer=None, user=None):
    """A form posted from a tab opened before the last sign-in: its hidden check no longer matches."""
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    client.get("/accounts/password-reset/")  # a page with a form: the browser holds the current cookie
    headers = {"HTTP_REFERER": referer} if referer else {}
    return client.post(path, {"csrfmiddlewaretoken": "x" * 64, "email": "new@st-anne.example", "role": "doctor"},
                       **headers)


def words(html: str) -> str:
    """What the page says to the eye: the main part's text, without the markup."""
    main = html[html.index("<main"):html.index("</main>")]
    return re.sub(r"<[^>]+>", " ", main)


def test_a_form_from_an_out_of_date_page_says_nothing_changed_and_leads_back(world):
    response = stale_post("/h/st-anne/members/", "http://testserver/h/st-anne/members/?role=doctor", world.admin_a)
    html = response.content.decode()
    assert response.status_code == 403
    assert "This page was out of date" in html and "nothing was changed" in html
    assert 'href="/h/st-anne/members/?role=doctor"' in html
    assert 'class="site-header"' in html and "Sign out" in html  # the site's layout, still signed in
    assert "CSRF" not in words(html) and "token" not in words(html).lower()


def test_a_sign_out_button_from_an_out_of_date_page_offers_a_working_one(world):
    """On a shared computer, a failed sign-out must not leave the person thinking they signed out."""
    response = stale_post("/accounts/logout/", "http://testserver/h/st-anne/", world.doctor_a)
    html = response.content.decode()
    assert response.status_code == 403
    assert "You are still signed in" in html and "fill in" not in html
    assert '<form method="post" action="/accounts/logout/">' in html and "csrfmiddlewaretoken" in html


def test_a_link_back_never_leads_to_another_site(world):
    response = stale_post("/h/st-anne/members/", "https://elsewhere.example/h/st-anne/members/", world.admin_a)
    html = response.content.decode()
    assert response.status_code == 403
    assert "elsewhere.example" not in html and '<a class="button" href="/">' in html
    # This site's address, but a path a browser reads as another site once it stands alone as a link.
    response = stale_post("/h/st-anne/members/", "http://testserver//elsewhere.example/x", world.admin_a)
    assert "elsewhere.example" not in response.content.decode()


def test_a_browser_without_cookies_is_told_why_it_keeps_happening(world):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": world.doctor_a.email, "password": "whatever"})
    html = response.content.decode()
    assert response.status_code == 403 and "blocking cookies" in html and "CSRF" not in words(html)


@pytest.mark.parametrize("path", [
    "/h/st-anne/members/{member}/role/",
    "/h/st-anne/federation/start/",
    "/h/st-anne/scans/00000000-0000-0000-0000-000000000000/remove/",
    "/operator/federation/runs/some-run/stop/",
])
def test_opening_a_buttons_address_says_to_use_the_button(client, world, path):
    client.force_login(world.admin_a)
    response = client.get(path.format(member=world.doctor_a.memberships.get().pk))
    html = response.content.decode()
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert "This address is used by a button on a page" in words(html)
    assert '<a class="button" href="/">' in html and 'class="site-header"' in html


def test_the_api_keeps_answering_its_405s_in_json(api, world):
    response = api(world.admin_a).get("/api/v1/invitations/accept/")
    assert response.status_code == 405 and response["Content-Type"] == "application/json"
    assert "button" not in response.content.decode()


def test_a_form_larger_than_the_site_accepts_is_answered_in_words(client, world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    client.force_login(world.admin_a)
    response = client.post("/h/st-anne/settings/", {"name": "x" * 10_000})
    html = response.content.decode()
    assert response.status_code == 400
    assert "larger than the site accepts" in words(html) and "Nothing was changed" in words(html)
    assert 'class="site-header"' in html and "Sign out" in html  # still signed in, and shown so
    world.a.refresh_from_db()
    assert world.a.name != "x" * 10_000
