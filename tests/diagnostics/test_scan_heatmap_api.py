"""The heatmap a result comes with (heatmap_url, and the heatmap image itself): it explains the software's
own reading, so a patient is not offered it once a doctor has changed that reading."""

import pytest

from diagnostics.models.scans import Scan
from hospitals.models import AIResultVisibility
from tests.diagnostics import samples
from tests.diagnostics.helpers import finish, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def read_as_glioma(world, api):
    world.a.patients_see_ai_results = AIResultVisibility.IMMEDIATELY
    world.a.save()
    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 3)).json()["id"])
    finish(scan, "glioma")
    return scan


def _heatmap(client, scan):
    url = f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/"
    listed = client.get(url).json()["result"]["heatmap_url"]
    return listed, client.get(f"{url}heatmap.png").status_code


def _review(api, world, scan, label):
    response = api(world.colleague).post(f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/review/",
                                         {"label": label}, format="json")
    assert response.status_code == 201


def test_the_owner_sees_the_heatmap_of_a_reading_a_doctor_confirmed(world, api, read_as_glioma):
    assert _heatmap(api(world.owner), read_as_glioma)[1] == 200
    _review(api, world, read_as_glioma, "glioma")
    listed, status = _heatmap(api(world.owner), read_as_glioma)
    assert listed and status == 200


def test_a_reading_a_doctor_changed_comes_without_its_heatmap_for_the_patient_only(world, api, read_as_glioma):
    _review(api, world, read_as_glioma, "notumor")
    assert _heatmap(api(world.owner), read_as_glioma) == (None, 404)
    # Staff keep it: it shows what the software said, which the case viewer compares with the review.
    listed, status = _heatmap(api(world.colleague), read_as_glioma)
    assert listed and status == 200
    assert api(world.outsider).get(f"/api/v1/hospitals/{read_as_glioma.hospital.slug}/scans/{read_as_glioma.id}/"
                                   "heatmap.png").status_code == 404
