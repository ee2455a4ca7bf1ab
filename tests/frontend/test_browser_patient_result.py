"""The patient's result page: it follows the doctor's outline (every correction is fetched anew, including
a second one that leaves the review state and the diagnosis as they were), says who drew it, and words a
failed scan without contradicting its reason."""

import numpy as np
import pytest

from diagnostics import services
from tests.diagnostics.helpers import finish
from tests.diagnostics.samples import array_png
from tests.factories import PASSWORD
from tests.frontend.conftest import in_other_thread, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_leftover_tasks")]


def _corrects_outline(world, scan, rows):
    outline = np.zeros((scan.height, scan.width), np.uint8)
    outline[rows, 40:90] = 255
    in_other_thread(lambda: services.review_scan(hospital=world.a, scan=scan, reviewer=world.doctor_a,
                                                 label="glioma", mask_png=array_png(outline)))


def test_a_second_outline_correction_reaches_the_open_result_page(world, analysed_scan, new_page):
    patient = new_page()
    fetched = []
    patient.on("request", lambda request: fetched.append(request.url) if "/mask.png" in request.url else None)
    sign_in(patient, world.owner, PASSWORD)
    patient.goto(f"/h/st-anne/scans/{analysed_scan.id}/")
    patient.locator("#status").wait_for()

    _corrects_outline(world, analysed_scan, slice(30, 60))
    patient.wait_for_function("() => performance.getEntriesByType('resource')"
                              ".some(e => e.name.includes('/mask.png?v=corrected'))", timeout=10000)
    first = len(set(fetched))
    _corrects_outline(world, analysed_scan, slice(100, 140))  # "changed by a doctor" and glioma, as before
    patient.wait_for_function(f"() => performance.getEntriesByType('resource')"
                              f".filter(e => e.name.includes('/mask.png')).length > {first}", timeout=10000)
    assert len(set(fetched)) == first + 1


def test_the_patient_is_told_who_drew_the_outline(world, analysed_scan, new_page):
    from hospitals.models import AIResultVisibility

    world.a.patients_see_ai_results = AIResultVisibility.IMMEDIATELY
    world.a.save()
    patient = new_page()
    sign_in(patient, world.owner, PASSWORD)
    patient.goto(f"/h/st-anne/scans/{analysed_scan.id}/")
    note = patient.locator("#outline-note")
    note.wait_for()
    assert note.inner_text().startswith("The yellow line is where the software outlined what it found.")
    patient.get_by_label("Show outline").uncheck()
    assert note.is_hidden()
    patient.get_by_label("Show outline").check()
    _corrects_outline(world, analysed_scan, slice(30, 60))
    patient.get_by_text("The yellow line is the outline as a doctor has checked or corrected it.").wait_for()


def test_a_result_without_an_outline_offers_no_outline_toggle(world, queued_scan, new_page):
    """No segmenter drew an outline and the doctor changed only the label: there is nothing to show, so no
    "Show outline" toggle that draws nothing, and no outline fetched that is not there."""
    finish(queued_scan, "glioma", 0.91, mask=False)
    in_other_thread(lambda: services.review_scan(hospital=world.a, scan=queued_scan, reviewer=world.doctor_a,
                                                 label="meningioma"))
    patient = new_page()
    masks, errors = [], []
    patient.on("request", lambda request: masks.append(request.url) if "/mask.png" in request.url else None)
    patient.on("pageerror", lambda error: errors.append(error))
    sign_in(patient, world.owner, PASSWORD)
    patient.goto(f"/h/st-anne/scans/{queued_scan.id}/")
    patient.get_by_text("A doctor has reviewed your scan and changed the software's result to this one.").wait_for()
    # Drawn in the same render as the sentence; the heatmap went with the software's label (may_see_heatmap).
    assert patient.get_by_label("Show outline").is_hidden() and patient.locator("#overlay-tools").is_hidden()
    assert masks == [] and errors == []


@pytest.fixture
def scan_failed_for_now(queued_scan):
    services.start_analysis(queued_scan.id)
    services.fail_scan(queued_scan.id, "gate_unavailable", "The scan could not be checked at the moment; the team has "
                                                           "been told, and the scan can be uploaded again later.")
    return queued_scan


def test_a_failed_scan_says_what_to_do_without_contradicting_its_reason(world, scan_failed_for_now, new_page):
    patient = new_page()
    sign_in(patient, world.owner, PASSWORD)
    patient.goto(f"/h/st-anne/scans/{scan_failed_for_now.id}/")
    failure = patient.locator("#result .notice.error")
    failure.wait_for()
    # "Upload another file" would contradict "upload again later": nothing was wrong with this one.
    assert failure.inner_text() == ("The scan could not be checked at the moment; the team has been told, and the "
                                    "scan can be uploaded again later. If this keeps happening, contact your hospital.")
