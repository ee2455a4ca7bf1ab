"""The outline a result comes with (mask_url in the scan's API data, diagnostics/api/serializers.py)."""

import numpy as np
import pytest

from diagnostics import services
from diagnostics.models.scans import Scan
from hospitals.models import AIResultVisibility
from tests.diagnostics import samples
from tests.diagnostics.helpers import upload

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
