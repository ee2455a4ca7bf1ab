"""Emailed links in a real browser against daphne: their secret follows "#", which the browser never
sends, so the server's access log (daphne's, in the server fixture's log) never holds it."""

import re

import pytest

from hospitals.models import Membership, Role
from hospitals.services import invite_member
from tests.frontend.conftest import PHONE, screenshot

pytestmark = pytest.mark.browser

# daphne's access log line: 127.0.0.1:PORT - - [06/Dec/2026:10:00:00] "GET /path/?query" 200 1234
ACCESS_LINE = re.compile(r'^\S+ - - \[[^\]]+\] "([A-Z]+ [^"]*)"', re.M)


def requests_logged(server) -> list[str]:
    return ACCESS_LINE.findall(server.log_path.read_text(errors="replace"))


def assert_never_logged(server, secret: str, opened_with: str) -> None:
    logged = requests_logged(server)
    assert opened_with in logged, logged  # the access log is there to read: this test can see a leak
    assert not [line for line in logged if secret in line]


def test_the_emailed_invitation_link_opens_the_form_and_its_token_stays_out_of_the_log(
        new_page, world, asgi_server, mailoutbox):
    invitation, token = invite_member(hospital=world.a, email="new.doctor@st-anne.example", role=Role.DOCTOR,
                                      actor=world.admin_a, site_url=asgi_server.url)
    link = re.search(r"Accept it here: (\S+)", mailoutbox[-1].body).group(1)
    assert link == f"{asgi_server.url}/invite/#{token}"

    page = new_page(PHONE)
    page.goto(link)
    page.get_by_role("button", name="Accept invitation").wait_for()
    assert page.url == f"{asgi_server.url}/invite/accept/" and token not in page.content()
    page.get_by_label("Password", exact=True).fill("a-long-new-secret-5")
    page.get_by_label("Password again").fill("a-long-new-secret-5")
    page.get_by_role("button", name="Accept invitation").click()
    page.get_by_text("Welcome to St Anne's.").wait_for()
    assert Membership.objects.get(user__email="new.doctor@st-anne.example", hospital=world.a).role == Role.DOCTOR
    assert_never_logged(asgi_server, token, "POST /invite/")
    assert token not in asgi_server.log_path.read_text()  # the mail went to this process, not the server's


def test_the_emailed_reset_link_opens_the_choose_a_password_form(new_page, world, asgi_server, forget_sign_in_brakes):
    page = new_page()
    page.goto("/accounts/password-reset/")
    page.get_by_label("Email").fill(world.patient_a.email)
    page.get_by_role("button", name="Send the link").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    # The live server mails to its console: the link is in its log, as in a mailbox.
    link = re.search(rf"({re.escape(asgi_server.url)}/accounts/password-reset/open/#(\S+))",
                     asgi_server.log_path.read_text())
    assert link, asgi_server.log()[-2000:]
    secret = link.group(2)
    uid, token = secret.split("/")

    page.goto(link.group(1))
    page.get_by_label("New password", exact=True).wait_for()
    assert page.url == f"{asgi_server.url}/accounts/password-reset/{uid}/set-password/"
    assert token not in page.content()
    screenshot(page, "reset-link-choose-password")
    assert_never_logged(asgi_server, token, "POST /accounts/password-reset/open/")


def test_a_link_cut_off_before_its_hash_says_so_and_without_javascript_the_pasted_link_opens(
        new_page, world, asgi_server):
    page = new_page()
    page.goto("/invite/")
    page.get_by_text("This link is incomplete").wait_for()
    assert page.get_by_role("alert").is_visible()
    screenshot(page, "invite-link-cut-off")

    invitation, token = invite_member(hospital=world.a, email="new.doctor@st-anne.example", role=Role.DOCTOR,
                                      actor=world.admin_a, site_url=asgi_server.url)
    no_script = new_page(java_script_enabled=False)
    no_script.goto(f"/invite/#{token}")
    # Playwright turns scripts off without telling the parser, so the <noscript> text stays unrendered here
    # (a browser with scripts off shows it); it is in the page.
    assert "This page needs JavaScript" in no_script.content()
    assert not no_script.get_by_text("This link is incomplete").is_visible()
    no_script.get_by_label("The whole link from the email").fill(f"{asgi_server.url}/invite/#{token}")
    no_script.get_by_role("button", name="Open the link").click()
    no_script.get_by_role("button", name="Accept invitation").wait_for()
    assert no_script.url == f"{asgi_server.url}/invite/accept/"
    assert_never_logged(asgi_server, token, "POST /invite/")
