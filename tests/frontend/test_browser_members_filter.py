"""The members page's email filter, in headless Chromium against daphne: what the admin types is part of
someone's address, often a patient's, and it must reach neither the address bar (the browser's history)
nor daphne's access log, which records each request's path and query string."""

import pytest

from tests.factories import PASSWORD
from tests.frontend.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_filtering_members_by_email_puts_it_in_no_address_and_no_access_log(new_page, world, asgi_server):
    admin = new_page()
    sign_in(admin, world.admin_a, PASSWORD)
    admin.goto("/h/st-anne/members/")
    typed = admin.get_by_label("Email contains")
    typed.fill("patient2@")
    typed.press("Enter")
    admin.get_by_text("(1 found)").wait_for()
    assert admin.get_by_label("Email contains").input_value() == "patient2@"
    assert "patient2" not in admin.url
    log = asgi_server.log_path.read_text(errors="replace")
    assert "patient2" not in log and "email=" not in log
    # Not for want of a log: the filter's own requests are in it.
    assert '"POST /h/st-anne/members/' in log and '"GET /h/st-anne/members/' in log
    admin.get_by_role("button", name="Show everyone").click()
    admin.get_by_text("(5)").wait_for()
