"""The outline a result comes with (mask_url in the scan's API data, diagnostics/api/serializers.py)."""

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from diagnostics import services
from diagnostics.models.scans import Scan
from hospitals.models import AIResultVisibility
from tests.diagnostics import samples
from tests.diagnostics.helpers import finish, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def clear_scan(world, api):
    """Patient A1's scan, read as no tumour by the software: its stored mask is empty."""
    world.a.patients_see_ai_results = AIResultVisibility.IMMEDIATELY
    world.a.save()
    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("notumor", 2)).json()["id"])
    services.start_analysis(scan.id)
    empty = np.zeros((scan.height, scan.width), np.uint8)
    services.record_diagnosis(scan.id, services.AnalysisResult(
        label="notumor", probabilities={"glioma": 0.02, "meningioma": 0.02, "notumor": 0.94, "pituitary": 0.02},
        model_version_id=None, tumour_area_px=0.0, mask_png=services.encode_png(empty)))
    return scan


def detail(client, scan):
    return client.get(f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/").json()


def test_a_patient_is_offered_no_outline_where_none_was_drawn(world, api, clear_scan):
    assert detail(api(world.owner), clear_scan)["result"]["mask_url"] is None


def test_staff_get_the_empty_mask_to_draw_on(world, api, clear_scan):
    assert detail(api(world.colleague), clear_scan)["result"]["mask_url"]


def _scan(world, api, n, **finished):
    world.a.patients_see_ai_results = AIResultVisibility.IMMEDIATELY
    world.a.save()
    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", n)).json()["id"])
    finish(scan, "glioma", **finished)
    return scan


def _review(client, scan, label, mask=None):
    body = {"label": label}
    if mask is not None:
        body["mask"] = SimpleUploadedFile("mask.png", samples.array_png(mask.astype(np.uint8) * 255))
    response = client.post(f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/review/", body,
                           format="multipart" if mask is not None else "json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_label_changed_where_the_software_stored_no_outline_offers_none(world, api):
    """No segmenter was active, and the doctor changed only the label: there is no outline to serve, so
    none is offered (a URL that answers 404 stopped the case page at its first render)."""
    scan = _scan(world, api, 30, mask=False)
    saved = _review(api(world.doctor_a), scan, "meningioma")
    assert saved["review_state"] == "corrected" and saved["result"]["mask_url"] is None
    for who in (world.colleague, world.owner):
        assert detail(api(who), scan)["result"]["mask_url"] is None
    listed = api(world.colleague).get(f"/api/v1/hospitals/{world.a.slug}/scans/").json()["results"]
    assert [row["result"]["mask_url"] for row in listed] == [None]
    assert api(world.colleague).get(f"/api/v1/hospitals/{world.a.slug}/scans/{scan.id}/mask.png").status_code == 404


def test_an_outline_a_doctor_drew_where_the_software_stored_none_is_offered_and_served(world, api):
    scan = _scan(world, api, 31, mask=False)
    outline = np.zeros((scan.height, scan.width), bool)
    outline[40:90, 60:120] = True
    url = _review(api(world.doctor_a), scan, "glioma", outline)["result"]["mask_url"]
    assert url and detail(api(world.owner), scan)["result"]["mask_url"] == url
    served = api(world.owner).get(url)
    assert served.status_code == 200 and served["Content-Type"] == "image/png"


def test_a_patient_is_offered_no_outline_a_doctor_erased(world, api):
    """The doctor's empty correction replaces the software's outline: staff still get it to draw on, the
    patient is shown no outline at all (a toggle that draws nothing)."""
    scan = _scan(world, api, 32)
    _review(api(world.doctor_a), scan, "glioma", np.zeros((scan.height, scan.width), bool))
    assert detail(api(world.colleague), scan)["result"]["mask_url"]
    assert detail(api(world.owner), scan)["result"]["mask_url"] is None


def test_the_scan_list_reads_as_many_queries_for_many_reviewed_scans_as_for_one(world, api):
    """Whether an outline can be served is read off each row, not asked row by row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    outline = np.zeros((256, 256), bool)
    outline[40:90, 60:120] = True

    def reviewed(n, **review):
        scan = _scan(world, api, n, mask=n % 2 == 0)
        _review(api(world.doctor_a), scan, "meningioma" if n % 3 else "glioma",
                outline[:scan.height, :scan.width] if review.get("drawn") else None)

    def queries_for_list():
        with CaptureQueriesContext(connection) as captured:
            rows = api(world.colleague).get(f"/api/v1/hospitals/{world.a.slug}/scans/").json()["results"]
        return len(captured), rows

    reviewed(40)
    one, _ = queries_for_list()
    for n in range(41, 45):
        reviewed(n, drawn=n == 43)
    many, rows = queries_for_list()
    assert len(rows) == 5 and many == one, f"{one} queries for one scan, {many} for five"
