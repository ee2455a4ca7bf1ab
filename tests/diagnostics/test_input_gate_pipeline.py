"""What the input gate does to an upload and to its result (diagnostics/services.py, analysis.py, access.py).

A picture nothing like a brain MRI is refused at upload; one merely unusual is analysed, but its patient
sees no result before a doctor has read it, whatever the hospital's setting, and staff see why.
"""


import numpy as np
import pytest

from diagnostics.models.scans import Diagnosis, Scan
from diagnostics.tasks import analyse_scan
from hospitals.models import AIResultVisibility
from tests.diagnostics import samples
from tests.diagnostics.helpers import stored_files, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def results_at_once(world):
    world.a.patients_see_ai_results = AIResultVisibility.IMMEDIATELY
    world.a.save(update_fields=["patients_see_ai_results"])
    return world


def scan_of(response) -> Scan:
    assert response.status_code == 201, response.content
    return Scan.objects.get(pk=response.json()["id"])


def test_a_checkerboard_is_refused_at_upload_and_leaves_nothing(world, api):
    response = upload(api(world.owner), world.a, samples.array_png(samples.checkerboard()), name="board.png")
    assert response.status_code == 422 and response.json()["error"] == "not_brain_mri"
    assert "does not look like a brain MRI" in response.json()["detail"]
    assert not Scan.objects.exists() and stored_files() == []


def test_a_colour_picture_is_refused_at_upload(world, api):
    response = upload(api(world.owner), world.a, samples.array_png(samples.colour_cartoon()), name="cartoon.png")
    assert response.status_code == 422 and response.json()["error"] == "not_brain_mri"
    assert "colour" in response.json()["detail"] and not Scan.objects.exists()


def test_an_unusual_image_waits_for_a_doctor_even_where_results_show_at_once(results_at_once, api):
    world = results_at_once
    noise = np.random.default_rng(0).integers(0, 256, (256, 256), dtype=np.uint8)
    scan = scan_of(upload(api(world.owner), world.a, samples.array_png(noise), name="noise.png"))
    assert analyse_scan.apply(args=[str(scan.id)]).get() == "done"
    diagnosis = Diagnosis.objects.get(scan=scan)
    assert diagnosis.unusual_image and diagnosis.input_distance > 0

    url = f"/api/v1/hospitals/{world.a.slug}/scans/{scan.id}/"
    mine = api(world.owner).get(url).json()
    assert mine["unusual_image"] and mine["awaiting_review"] and mine["result"] is None and mine["label"] is None
    staff = api(world.doctor_a).get(url).json()
    assert staff["unusual_image"] and staff["result"]["input_distance"] == diagnosis.input_distance
    review = api(world.doctor_a).post(url + "review/", {"label": "notumor"}, format="json")
    assert review.status_code == 201
    assert api(world.owner).get(url).json()["label"] == "notumor"  # a doctor has read it


def test_a_real_mri_is_not_unusual_and_shows_at_once_where_the_hospital_allows(results_at_once, api):
    world = results_at_once
    scan = scan_of(upload(api(world.owner), world.a, samples.jpeg_bytes("meningioma", 4)))
    assert analyse_scan.apply(args=[str(scan.id)]).get() == "done"
    assert not Diagnosis.objects.get(scan=scan).unusual_image
    mine = api(world.owner).get(f"/api/v1/hospitals/{world.a.slug}/scans/{scan.id}/").json()
    assert not mine["unusual_image"] and mine["result_available"] and mine["label"]


def test_an_unread_unusual_image_matches_no_filter_on_the_softwares_class(world, api):
    from tests.diagnostics.helpers import finish

    real = scan_of(upload(api(world.owner), world.a, samples.jpeg_bytes("notumor", 2)))
    odd = scan_of(upload(api(world.owner), world.a, samples.jpeg_bytes("notumor", 3)))
    finish(real, "notumor", 0.99)
    finish(odd, "notumor", 0.99, unusual=True)
    url = f"/api/v1/hospitals/{world.a.slug}/scans/"

    def ids(params):
        return {item["id"] for item in api(world.doctor_a).get(url, params).json()["results"]}

    assert ids({"label": "notumor"}) == ids({"min_confidence": 0.9}) == {str(real.id)}
    assert ids({}) == {str(real.id), str(odd.id)}  # still listed, with its badge
    api(world.doctor_a).post(f"{url}{odd.id}/review/", {"label": "notumor"}, format="json")
    assert ids({"label": "notumor"}) == {str(real.id), str(odd.id)}  # a doctor's reading is a reading


def test_a_worker_without_the_gate_fails_the_scan_with_a_sentence(world, api, settings, tmp_path):
    scan = scan_of(upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 5)))
    settings.INPUT_GATE_PATH = tmp_path / "missing.json"  # the worker's deployment lost its file
    assert analyse_scan.apply(args=[str(scan.id)]).get() == "failed"
    scan.refresh_from_db()
    assert scan.failure_code == "gate_unavailable" and "uploaded again later" in scan.failure_reason
    assert not Diagnosis.objects.filter(scan=scan).exists()
