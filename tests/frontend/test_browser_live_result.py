"""A patient uploads a real MRI slice through the page and watches the result arrive, live, from a real
Celery worker running the active models: no reload, only the websocket."""

import pytest

from diagnostics.models import Scan
from hospitals.models import AIResultVisibility
from tests.diagnostics.samples import jpeg_bytes, kaggle_image
from tests.factories import PASSWORD
from tests.frontend.conftest import PHONE, assert_fits_width, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def immediate_results(live, world, active_model, celery_worker_process):
    # The hospital shows AI results at once (marked preliminary), so the label itself arrives live.
    world.a.patients_see_ai_results = AIResultVisibility.IMMEDIATELY
    world.a.save()
    return world


def test_patient_uploads_and_sees_the_result_arrive_live(immediate_results, new_page):
    world = immediate_results
    page = new_page(PHONE)
    sign_in(page, world.owner, PASSWORD)
    page.get_by_role("link", name="Upload a scan").click()
    page.get_by_label("MRI scan file").set_input_files(
        {"name": kaggle_image("glioma", 5).name, "mimeType": "image/jpeg", "buffer": jpeg_bytes("glioma", 5)}
    )
    page.get_by_role("button", name="Upload").click()
    # The web process checks the upload with the input gate, loading it on this first upload: on a busy
    # machine that alone has taken most of the default 20 s.
    page.wait_for_url("**/h/st-anne/scans/*/", timeout=90_000)
    # A marker that a reload would wipe: the result must come over the websocket, not a new page.
    page.evaluate("window.__sameDocument = true")
    page.get_by_text("Live updates on").wait_for()
    page.locator("#result-label").wait_for(timeout=240_000)
    assert page.evaluate("window.__sameDocument === true")

    scan = Scan.objects.get(patient__user=world.owner)
    assert scan.status == "done"
    label = page.locator("#result-label").inner_text()
    assert label == {"glioma": "Glioma", "meningioma": "Meningioma", "notumor": "No tumour",
                     "pituitary": "Pituitary tumour"}[scan.diagnosis.label]
    page.get_by_text("Preliminary result from the software").wait_for()
    page.locator(".disclaimer").wait_for()
    if scan.diagnosis.heatmap_path:
        page.get_by_label("Show heatmap").check()
        page.locator("img.heatmap").wait_for(state="visible")
    assert_fits_width(page)
    screenshot(page, "flow-patient-live-result-phone")
