"""A scan page left open after its sign-in ended (signed out in another tab) says so when news arrives,
instead of showing the old state under "this page updates by itself" for ever."""

from urllib.parse import quote

import pytest

from diagnostics import services
from tests.factories import PASSWORD
from tests.frontend.conftest import PHONE, in_other_thread, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_leftover_tasks")]


def test_news_after_the_sign_in_ended_asks_to_sign_in_again(world, analysed_scan, new_page):
    page = new_page(PHONE)
    sign_in(page, world.owner, PASSWORD)
    scan_url = f"/h/st-anne/scans/{analysed_scan.id}/"
    page.goto(scan_url)
    page.get_by_text("Live updates on").wait_for()
    page.get_by_text("A doctor will review it before the result is shown here").wait_for()

    other_tab = page.context.new_page()
    other_tab.goto("/h/st-anne/scans/")
    other_tab.get_by_role("button", name="Sign out").click()
    other_tab.wait_for_load_state()
    other_tab.close()
    in_other_thread(lambda: services.review_scan(hospital=world.a, scan=analysed_scan, reviewer=world.doctor_a,
                                                 label="glioma"))

    notice = page.locator("#signed-out")
    notice.wait_for()
    assert notice.inner_text() == "Your sign-in has ended. Sign in again to see the latest. Sign in again"
    assert notice.get_by_role("link", name="Sign in again").get_attribute("href") == \
        f"/accounts/login/?next={quote(scan_url, safe='')}"
    assert page.locator("#live-state").inner_text() == "Live updates off"
