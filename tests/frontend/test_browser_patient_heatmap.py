"""The heatmap on a patient's result page explains the software's reading, so it goes once a doctor has
changed that reading: under "No tumour" it would colour the scan where the software saw a tumour."""

import pytest

from diagnostics import services
from tests.diagnostics.helpers import finish
from tests.factories import PASSWORD
from tests.frontend.conftest import PHONE, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_leftover_tasks")]


def _reviewed(world, scan, label):
    finish(scan, "glioma", 0.91)
    scan.refresh_from_db()
    services.review_scan(hospital=world.a, scan=scan, reviewer=world.doctor_a, label=label)
    return scan


# Reviewed before `new_page` in the test's arguments: once Chromium runs, the review's push is refused.
@pytest.fixture
def changed_to_no_tumour(world, queued_scan):
    return _reviewed(world, queued_scan, "notumor")


@pytest.fixture
def confirmed(world, queued_scan):
    return _reviewed(world, queued_scan, "glioma")


def _open(new_page, world, scan):
    page = new_page(PHONE)
    sign_in(page, world.owner, PASSWORD)
    page.goto(f"/h/st-anne/scans/{scan.id}/")
    page.locator("#result-label").wait_for()
    return page


def test_no_heatmap_is_offered_once_a_doctor_changed_the_softwares_reading(world, changed_to_no_tumour, new_page):
    page = _open(new_page, world, changed_to_no_tumour)
    assert page.locator("#result-label").inner_text() == "No tumour"
    page.get_by_text("changed the software's result").wait_for()
    assert not page.get_by_label("Show heatmap").is_visible()
    assert not page.locator("img.heatmap").is_visible()
    assert not page.locator("#heatmap-note").is_visible()


def test_the_heatmap_stays_on_offer_when_the_doctor_confirmed_the_reading(world, confirmed, new_page):
    page = _open(new_page, world, confirmed)
    assert page.locator("#result-label").inner_text() == "Glioma"
    page.get_by_label("Show heatmap").check()
    page.locator("img.heatmap").wait_for(state="visible")
