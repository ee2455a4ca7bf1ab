"""Sign in, sign out and password reset pages (frontend/views/auth.py)."""

import re
import time

from urllib.parse import urlsplit

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN
from django.core import mail
from django.templatetags.static import static
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from hospitals.api_tokens import issue_token
from hospitals.models import ApiToken
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed sign-ins for this account. Try again in 15 minutes or reset your password."


@pytest.fixture(autouse=True)
def _forget_failed_logins(forget_sign_in_brakes):
    forget_sign_in_brakes.emails.append("nobody@st-anne.example")
    yield


def sign_in(client, email, password):
    return client.post("/accounts/login/", {"username": email, "password": password})


def fail(client, email, times):
    for _ in range(times):
        response = sign_in(client, email, "nope-nope-nope")
        assert response.status_code == 200 and "do not match an account" in response.content.decode()


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
    page = client.get("/accounts/logout/")
    assert page.status_code == 200 and "_auth_user_id" in client.session  # opening the address signs nobody out
    assert re.search(r'<form method="post" action="/accounts/logout/">\s*<input type="hidden" '
                     r'name="csrfmiddlewaretoken"[^>]*>\s*<div class="actions"><button type="submit">Sign out</button>',
                     page.content.decode())
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session


def test_the_sign_out_address_tells_someone_signed_out_where_to_sign_in(client):
    html = client.get("/accounts/logout/").content.decode()
    assert "You are signed out." in html and 'href="/accounts/login/">Sign in</a>' in html
    assert "<button" not in html


def _session_row(client):
    from django.contrib.sessions.models import Session

    return Session.objects.get(session_key=client.session.session_key)


def test_a_sign_in_lasts_while_it_is_used_and_ends_when_left_idle(client, world, settings):
    from datetime import timedelta

    from django.utils import timezone

    client.force_login(world.doctor_a)
    row = _session_row(client)
    row.expire_date = timezone.now() + timedelta(seconds=5)  # about to end
    row.save()
    assert client.get("/h/st-anne/worklist/").status_code == 200
    extended = _session_row(client).expire_date - timezone.now()
    assert timedelta(seconds=settings.SESSION_COOKIE_AGE - 60) < extended <= timedelta(seconds=settings.SESSION_COOKIE_AGE)

    row = _session_row(client)
    row.expire_date = timezone.now() - timedelta(seconds=1)  # left idle past the timeout
    row.save()
    response = client.get("/h/st-anne/worklist/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def reset_link(body: str) -> str:
    return re.search(r"(http://testserver/accounts/password-reset/\S+)", body).group(1)


def open_reset_link(client, body: str):
    """What link.js does on the emailed link's page: posts what follows the "#"; the page it leads to."""
    fragment = urlsplit(reset_link(body)).fragment
    return client.post("/accounts/password-reset/open/", {"link": fragment}, follow=True)


def test_the_reset_mail_carries_its_token_after_the_hash_only(client, world):
    client.post("/accounts/password-reset/", {"email": world.patient_a.email})
    parts = urlsplit(reset_link(mail.outbox[0].body))
    # A browser never sends the part after "#": opening the link writes the token to no access log.
    assert (parts.path, parts.query) == ("/accounts/password-reset/open/", "")
    uid, token = parts.fragment.split("/")
    assert uid == urlsafe_base64_encode(force_bytes(world.patient_a.pk))
    assert default_token_generator.check_token(world.patient_a, token)


def test_the_reset_links_page_holds_no_token_and_posts_what_follows_the_hash(client, world):
    html = client.get("/accounts/password-reset/open/").content.decode()
    assert f'<script type="module" src="{static("frontend/js/link.js")}"></script>' in html
    assert '<form method="post" action="/accounts/password-reset/open/" id="link-form" novalidate>' in html
    assert "<noscript>" in html and "needs JavaScript" in html and 'id="link-incomplete"' in html


def test_the_posted_reset_token_moves_to_djangos_set_password_page(client, world):
    client.post("/accounts/password-reset/", {"email": world.patient_a.email})
    uid, token = urlsplit(reset_link(mail.outbox[0].body)).fragment.split("/")
    opened = client.post("/accounts/password-reset/open/", {"link": f"{uid}/{token}"})
    assert opened.status_code == 302 and opened["Location"] == f"/accounts/password-reset/{uid}/set-password/"
    assert client.session[INTERNAL_RESET_SESSION_TOKEN] == token
    html = client.get(opened["Location"]).content.decode()
    assert "Choose a new password" in html and token not in html
    # The whole link pasted into the page's field (no JavaScript) opens it too.
    client.cookies.clear()
    pasted = client.post("/accounts/password-reset/open/", {"link": reset_link(mail.outbox[0].body)})
    assert pasted["Location"] == f"/accounts/password-reset/{uid}/set-password/"


def test_a_reset_link_whose_slash_a_mail_gateway_percent_encoded_still_opens(client, world):
    # Some mail gateways rewrite links and encode the "/" after the "#"; the browser keeps it encoded.
    client.post("/accounts/password-reset/", {"email": world.patient_a.email})
    uid, token = urlsplit(reset_link(mail.outbox[0].body)).fragment.split("/")
    opened = client.post("/accounts/password-reset/open/", {"link": f"{uid}%2F{token}"})
    assert opened.status_code == 302 and opened["Location"] == f"/accounts/password-reset/{uid}/set-password/"


@pytest.mark.parametrize("mangle", [
    lambda uid, token: f"{uid}/{token[:-1]}x",  # a wrong token
    lambda uid, token: f"{urlsafe_base64_encode(b'999999')}/{token}",  # another account's
    lambda uid, token: f"{uid}/set-password",
    lambda uid, token: f"%%%/{token}",
    lambda uid, token: uid,  # the link cut off after the account's part
])
def test_a_posted_reset_link_that_opens_nothing_gets_the_link_no_longer_works_page(client, world, mangle):
    client.post("/accounts/password-reset/", {"email": world.patient_a.email})
    uid, token = urlsplit(reset_link(mail.outbox[0].body)).fragment.split("/")
    page = client.post("/accounts/password-reset/open/", {"link": mangle(uid, token)})
    assert "This link no longer works" in page.content.decode() and "new_password1" not in page.content.decode()
    assert INTERNAL_RESET_SESSION_TOKEN not in client.session


def test_a_reset_link_with_nothing_after_the_hash_says_it_is_incomplete(client, world):
    page = client.post("/accounts/password-reset/open/", {"link": "http://testserver/accounts/password-reset/open/#"})
    assert page.status_code == 400 and "This link is incomplete" in page.content.decode()


def test_a_link_mailed_before_the_hash_form_still_works_until_it_expires(client, world):
    uid = urlsafe_base64_encode(force_bytes(world.patient_a.pk))
    token = default_token_generator.make_token(world.patient_a)
    form = client.get(f"/accounts/password-reset/{uid}/{token}/", follow=True)
    assert form.redirect_chain == [(f"/accounts/password-reset/{uid}/set-password/", 302)]
    new_password = "a-much-longer-secret-42"
    done = client.post(form.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password})
    assert done["Location"] == "/accounts/password-reset/done/"
    assert client.login(username=world.patient_a.email, password=new_password)


def test_password_reset_round_trip(client, world):
    token, _ = issue_token(world.patient_a)
    response = client.post("/accounts/password-reset/", {"email": world.patient_a.email})
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert len(mail.outbox) == 1
    form = open_reset_link(client, mail.outbox[0].body)
    assert "Choose a new password" in form.content.decode()
    new_password = "a-much-longer-secret-42"
    done = client.post(form.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password})
    assert done["Location"] == "/accounts/password-reset/done/"
    assert client.login(username=world.patient_a.email, password=new_password)
    # Whoever had the old password may have minted an API token with it: the reset ends that too.
    assert not ApiToken.objects.filter(pk=token.pk).exists()


def test_password_reset_for_unknown_email_looks_the_same_and_sends_nothing(client, world):
    response = client.post("/accounts/password-reset/", {"email": "nobody@example.org"})
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert mail.outbox == []


def test_used_reset_link_says_so(client, world):
    client.post("/accounts/password-reset/", {"email": world.patient_a.email})
    form = open_reset_link(client, mail.outbox[0].body)
    client.post(form.redirect_chain[-1][0], {"new_password1": "another-long-secret-7", "new_password2": "another-long-secret-7"})
    again = open_reset_link(client, mail.outbox[0].body)
    assert "This link no longer works" in again.content.decode()


def test_five_failures_lock_the_account_even_against_the_right_password(client, world):
    fail(client, world.doctor_a2.email, 5)
    locked = sign_in(client, world.doctor_a2.email, PASSWORD)
    assert locked.status_code == 429
    html = locked.content.decode()
    assert LOCKED in html and 'href="/accounts/password-reset/"' in html
    assert "_auth_user_id" not in client.session
    # Another account from the same browser signs in.
    assert sign_in(client, world.doctor_a.email, PASSWORD).status_code == 302


def test_an_unknown_email_is_locked_with_the_same_page(client, world):
    fail(client, "nobody@st-anne.example", 5)
    locked = sign_in(client, "nobody@st-anne.example", PASSWORD)
    assert locked.status_code == 429 and LOCKED in locked.content.decode()


def test_the_page_and_the_api_share_one_count(client, world):
    from rest_framework.test import APIClient

    fail(client, world.doctor_a2.email, 3)
    for _ in range(2):
        APIClient().post("/api/v1/auth/token/", {"email": world.doctor_a2.email, "password": "nope-nope-nope"})
    assert sign_in(client, world.doctor_a2.email, PASSWORD).status_code == 429


def test_a_success_clears_earlier_failures(client, world):
    fail(client, world.doctor_a2.email, 4)
    assert sign_in(client, world.doctor_a2.email, PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    fail(client, world.doctor_a2.email, 4)
    assert sign_in(client, world.doctor_a2.email, PASSWORD).status_code == 302


def test_the_lock_ends_with_the_window(client, world, settings):
    settings.LOGIN_FAILURE_LIMIT = 2  # each failure costs an Argon2 hash; both must fall inside the window
    settings.LOGIN_FAILURE_WINDOW_S = 3
    fail(client, world.doctor_a2.email, 2)
    assert sign_in(client, world.doctor_a2.email, PASSWORD).status_code == 429
    time.sleep(3.1)
    assert sign_in(client, world.doctor_a2.email, PASSWORD).status_code == 302


def test_a_password_reset_is_the_way_out_of_a_lock(client, world):
    fail(client, world.patient_a.email, 5)
    assert sign_in(client, world.patient_a.email, PASSWORD).status_code == 429

    assert client.post("/accounts/password-reset/", {"email": world.patient_a.email}).status_code == 302
    form = open_reset_link(client, mail.outbox[0].body)
    new_password = "a-much-longer-secret-42"
    client.post(form.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password})
    assert sign_in(client, world.patient_a.email, new_password).status_code == 302


def test_reset_mails_to_one_address_are_limited_and_the_page_does_not_tell(client, world, settings):
    settings.PASSWORD_RESET_MAILS_PER_HOUR = 2
    for _ in range(4):
        response = client.post("/accounts/password-reset/", {"email": world.patient_a.email})
        assert response["Location"] == "/accounts/password-reset/sent/"
    assert len(mail.outbox) == 2
    # Another address still gets its mail.
    client.post("/accounts/password-reset/", {"email": world.doctor_a.email})
    assert len(mail.outbox) == 3


def test_a_reset_link_works_for_the_configured_time_and_the_mail_says_so(client, world, settings):
    assert settings.PASSWORD_RESET_TIMEOUT == 3600  # the default: an hour, not Django's three days
    client.post("/accounts/password-reset/", {"email": world.patient_a.email})
    assert "open this link (it works once, within 1 hour):" in mail.outbox[0].body

    # A link minted 61 minutes ago no longer opens the form; one minted 59 minutes ago still does.
    uid = urlsafe_base64_encode(force_bytes(world.patient_a.pk))
    now = default_token_generator._num_seconds(default_token_generator._now())
    tokens = default_token_generator
    stale = tokens._make_token_with_timestamp(world.patient_a, now - 61 * 60, tokens.secret)
    fresh = tokens._make_token_with_timestamp(world.patient_a, now - 59 * 60, tokens.secret)
    for link, post in [("/accounts/password-reset/open/", {"link": f"{uid}/{stale}"}),
                       (f"/accounts/password-reset/{uid}/{stale}/", None)]:  # as mailed before the "#" form
        stale_page = (client.post(link, post, follow=True) if post else client.get(link, follow=True)).content.decode()
        assert "This link no longer works" in stale_page
    for link, post in [("/accounts/password-reset/open/", {"link": f"{uid}/{fresh}"}),
                       (f"/accounts/password-reset/{uid}/{fresh}/", None)]:
        fresh_page = (client.post(link, post, follow=True) if post else client.get(link, follow=True)).content.decode()
        assert "Choose a new password" in fresh_page

    settings.PASSWORD_RESET_TIMEOUT = 2 * 86400
    client.post("/accounts/password-reset/", {"email": world.patient_a.email})
    assert "within 2 days" in mail.outbox[-1].body
