"""The scan on the patient's result page is for looking at, not a tool: the page scrolls over it, and the
note below a volume's slider speaks only of the overlays the patient is offered. And a doctor who saves a
diagnosis from the keyboard keeps their place on the page."""

import pytest

from diagnostics import services
from tests.factories import PASSWORD
from tests.frontend.conftest import PHONE, in_other_thread, open_case, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_leftover_tasks")]


def test_a_volume_a_doctor_read_as_no_tumour_speaks_of_no_outline_or_heatmap(world, analysed_volume, new_page):
    in_other_thread(lambda: services.review_scan(hospital=world.a, scan=analysed_volume, reviewer=world.doctor_a,
                                                 label="notumor"))
    patient = new_page(PHONE)
    sign_in(patient, world.owner, PASSWORD)
    patient.goto(f"/h/st-anne/scans/{analysed_volume.id}/")
    patient.locator("#result-label").wait_for()
    assert patient.locator("#slice-nav .slice-label").inner_text() == "Slice 4 of 5 · analysed slice"
    assert patient.locator("#slice-note").inner_text() == ""
    patient.keyboard.press("PageUp")
    assert patient.locator("#slice-note").inner_text() == ""
    assert not patient.locator("canvas.outline").is_visible() and not patient.locator("img.heatmap").is_visible()


def test_the_page_scrolls_over_the_patients_scan_and_the_scan_is_not_zoomed(world, analysed_volume, new_page):
    in_other_thread(lambda: services.review_scan(hospital=world.a, scan=analysed_volume, reviewer=world.doctor_a,
                                                 label="meningioma"))
    patient = new_page({"width": 1000, "height": 600})
    sign_in(patient, world.owner, PASSWORD)
    patient.goto(f"/h/st-anne/scans/{analysed_volume.id}/")
    patient.locator("#result-label").wait_for()
    # Only the outline is offered once a doctor has changed the software's reading: the note names it alone.
    assert patient.locator("#slice-note").inner_text() == "The outline belongs to this slice."
    viewer = patient.locator("#viewer")
    viewer.scroll_into_view_if_needed()
    box = viewer.bounding_box()
    before = patient.evaluate("window.scrollY")
    patient.mouse.move(box["x"] + box["width"] / 2, box["y"] + min(box["height"], 300) / 2)
    patient.mouse.wheel(0, 300)
    patient.wait_for_function(f"() => window.scrollY > {before}")
    assert patient.locator("#viewer .stage").evaluate("stage => stage.style.transform") in ("", "none")
    assert patient.locator("#viewer").evaluate("viewer => getComputedStyle(viewer).touchAction") == "auto"


def test_a_diagnosis_saved_from_the_keyboard_leaves_the_focus_on_the_button(world, analysed_volume, new_page):
    doctor = open_case(new_page, world, analysed_volume)
    submit = doctor.locator("#review-submit")
    submit.focus()
    doctor.keyboard.press("Enter")
    doctor.locator("#review-message .notice.ok").wait_for()
    # Disabled while saving, the button lost the focus to the page; it has it back once the save is done.
    doctor.wait_for_function("() => document.activeElement === document.getElementById('review-submit')"
                             " && !document.activeElement.disabled")
