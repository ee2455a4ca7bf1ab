"""A scan page refetches the scan at every event of its socket (scanpage.js followScan): when two refreshes
overlap, an answer older than the one shown is dropped, so the page never falls back to older news."""

import pytest

from tests.diagnostics.helpers import finish
from tests.factories import PASSWORD
from tests.frontend.conftest import in_other_thread, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_leftover_tasks")]


def test_an_earlier_refresh_answered_last_does_not_undo_a_later_one(world, queued_scan, new_page):
    doctor = new_page()
    sign_in(doctor, world.doctor_a, PASSWORD)
    held = []

    def hold_the_first_answer(route):
        # The socket's first refresh: answered now (the scan still queued), handed to the page later.
        if held:
            route.continue_()
        else:
            held.append((route, route.fetch()))

    doctor.route(f"**/api/v1/hospitals/st-anne/scans/{queued_scan.id}/", hold_the_first_answer)
    doctor.goto(f"/h/st-anne/scans/{queued_scan.id}/")
    doctor.get_by_text("Live updates on").wait_for()
    while not held:
        doctor.wait_for_timeout(50)
    in_other_thread(lambda: finish(queued_scan, "glioma", 0.91))  # an event, and a second refresh
    doctor.locator("#ai-label").wait_for()
    status = doctor.locator("#status")
    assert status.inner_text() == "Analysed"
    route, queued_answer = held[0]
    assert queued_answer.json()["status"] == "queued"
    with doctor.expect_response(f"**/scans/{queued_scan.id}/"):
        route.fulfill(response=queued_answer)
    doctor.wait_for_timeout(500)
    assert status.inner_text() == "Analysed"
    assert doctor.locator("#ai-label").inner_text() == "Glioma"
