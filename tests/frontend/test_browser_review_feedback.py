"""What the case page says after a doctor saves a review: the words name what this review did, as the
reviews list does, never the scan's overall review state (which stays "changed" once any outline was
corrected, so it would call a plain confirmation a change)."""

import pytest

from tests.diagnostics.helpers import finish
from tests.factories import PASSWORD
from tests.frontend.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_leftover_tasks")]


@pytest.fixture
def analysed_scan(queued_scan):
    """Analysed as glioma with a known outline (rows 10-30, columns 20-50)."""
    finish(queued_scan, "glioma", 0.91)
    return queued_scan


def _paint_stroke(page):
    box = page.locator("canvas.outline").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.7)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.7, steps=8)
    page.mouse.up()


def _save_and_read_message(page):
    page.locator("#review-message").evaluate("el => { el.textContent = ''; }")
    page.locator("#review-submit").click()
    message = page.locator("#review-message .notice")
    message.wait_for()
    return message.inner_text()


def test_the_saved_message_says_what_the_review_did(world, analysed_scan, new_page):
    doctor = new_page()
    sign_in(doctor, world.doctor_a, PASSWORD)
    doctor.goto(f"/h/st-anne/scans/{analysed_scan.id}/")
    doctor.locator("#ai-label").wait_for()
    doctor.wait_for_function("() => document.getElementById('review-form').elements.label.value === 'glioma'")

    # The software's glioma, kept, with a corrected outline: a confirmation, not a change of diagnosis.
    _paint_stroke(doctor)
    assert "Outline corrected" in doctor.locator("#mask-state").inner_text()
    assert _save_and_read_message(doctor) == "Saved: Glioma confirmed, outline corrected."

    doctor.get_by_label("Meningioma").check()
    assert _save_and_read_message(doctor) == "Saved: Meningioma (was Glioma)."

    # Confirming the standing diagnosis again changes nothing, whatever the scan's state says.
    assert doctor.locator("#review-submit").inner_text() == "Confirm diagnosis"
    assert _save_and_read_message(doctor) == "Saved: Meningioma confirmed."
    items = doctor.locator("#reviews li")
    assert items.count() == 3
    assert "Meningioma (confirmed)" in items.nth(2).inner_text()
