"""Accessibility of the page scripts, in headless Chromium against daphne: shortcuts that act only where
they are meant, toggles that are buttons, the hospital switcher's name and Escape, a result page that
announces a sentence rather than itself, and a plain answer when the sign-in ended while a page was open.
"""

import pytest

from diagnostics.models import Scan
from tests.diagnostics.helpers import finish, upload
from tests.diagnostics.samples import jpeg_bytes
from tests.factories import PASSWORD
from tests.frontend.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_leftover_tasks")]


# Scans are made before `new_page`: once Chromium runs, the channel layer's pushes need another thread.
@pytest.fixture
def queued_scan(live, world, api):
    response = upload(api(world.owner), world.a, jpeg_bytes("glioma", 0))
    assert response.status_code == 201, response.content
    return Scan.objects.get(pk=response.json()["id"])


@pytest.fixture
def analysed_scan(queued_scan):
    finish(queued_scan, "glioma", 0.91)
    return queued_scan


def _open_case(new_page, world, scan):
    doctor = new_page()
    sign_in(doctor, world.doctor_a, PASSWORD)
    doctor.goto(f"/h/st-anne/scans/{scan.id}/")
    doctor.locator("#ai-label").wait_for()
    doctor.wait_for_function("() => document.getElementById('review-form').elements.label.value === 'glioma'")
    return doctor


def test_only_the_tool_buttons_are_toggles(world, analysed_scan, new_page):
    doctor = _open_case(new_page, world, analysed_scan)
    toggles = doctor.evaluate("() => [...document.querySelectorAll('[aria-pressed]')].map(e => e.tagName)")
    assert toggles and set(toggles) == {"BUTTON"}
    assert doctor.locator("#viewer").get_attribute("aria-pressed") is None
