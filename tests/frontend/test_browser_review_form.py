"""The case page's review form before and beside its script: a doctor's notes never go into a URL, and a
case whose outline cannot be loaded can still be reviewed."""

import pytest

from diagnostics import services
from diagnostics.models.scans import Review
from tests.diagnostics.helpers import finish
from tests.factories import PASSWORD
from tests.frontend.conftest import in_other_thread, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_leftover_tasks")]


def test_without_its_script_the_review_form_sends_nothing(world, analysed_scan, new_page):
    """The form is the script's: without it (a module that failed to load), the browser's own submission
    would put the notes, which may name the patient, in the page's URL, where access logs and the
    browser's history keep them."""
    doctor = new_page(java_script_enabled=False)
    sign_in(doctor, world.doctor_a, PASSWORD)
    case = f"/h/st-anne/scans/{analysed_scan.id}/"
    doctor.goto(case)
    doctor.get_by_label("Meningioma").check()
    doctor.get_by_label("Notes").fill("Known to the clinic since 2019")
    doctor.locator("#review-submit").click(force=True)
    doctor.wait_for_timeout(500)
    doctor.get_by_label("Meningioma").press("Enter")  # a form's implicit submission
    doctor.wait_for_timeout(500)
    assert doctor.url.endswith(case) and doctor.get_by_label("Notes").input_value() == "Known to the clinic since 2019"
    assert not Review.objects.exists()


def test_a_case_without_an_outline_to_load_can_still_be_reviewed(world, queued_scan, new_page):
    """No outline was stored (a diagnosis without a segmenter) and a colleague changed only the label: the
    page loads no outline (none is offered; one that answered 404 stopped its first render), and the
    review form works."""
    finish(queued_scan, "glioma", 0.91, mask=False)
    in_other_thread(lambda: services.review_scan(hospital=world.a, scan=queued_scan, reviewer=world.doctor_a2,
                                                 label="meningioma"))
    doctor = new_page()
    masks, errors = [], []
    doctor.on("request", lambda request: masks.append(request.url) if "/mask.png" in request.url else None)
    doctor.on("pageerror", lambda error: errors.append(error))
    sign_in(doctor, world.doctor_a, PASSWORD)
    doctor.goto(f"/h/st-anne/scans/{queued_scan.id}/")
    doctor.wait_for_function("() => document.getElementById('review-form').elements.label.value === 'meningioma'")
    assert masks == [] and errors == []
    doctor.get_by_label("Glioma").check()
    doctor.locator("#review-submit").click()
    doctor.locator("#review-message .notice.ok").wait_for()
    assert Review.objects.filter(scan=queued_scan).count() == 2
