"""The scan API's documented shapes (diagnostics.api.serializers.Scan*Serializer) match what scan_data answers.

scan_data builds its body by hand, so nothing else would notice a key added to it, or renamed, and
/api/docs/ describing the old shape.
"""

import pytest

from diagnostics.api import serializers as s
from diagnostics.models.scans import Scan
from tests.diagnostics import samples
from tests.diagnostics.helpers import finish, upload

pytestmark = pytest.mark.django_db


def assert_shape(data: dict, serializer) -> None:
    fields = serializer.fields
    required = {name for name, field in fields.items() if field.required}
    assert required - set(data) == set(), "documented but not answered"
    assert set(data) - set(fields) == set(), "answered but not documented"


@pytest.fixture
def reviewed_volume(world, api):
    """A three-slice scan, analysed and reviewed by a doctor: every optional part of the answer is there."""
    response = upload(api(world.owner), world.a, samples.nifti_bytes("glioma", 3), name="scan.nii")
    assert response.status_code == 201, response.content
    assert_shape(response.json(), s.ScanUploadedSerializer())
    scan = Scan.objects.get(pk=response.json()["id"])
    finish(scan, "glioma", 0.7)
    reviewed = api(world.colleague).post(f"/api/v1/hospitals/{world.a.slug}/scans/{scan.id}/review/",
                                         {"label": "meningioma"}, format="json")
    assert reviewed.status_code == 201, reviewed.content
    return scan


@pytest.mark.parametrize("who", ["colleague", "owner"])
def test_a_scan_reads_as_documented(world, api, reviewed_volume, who):
    url = f"/api/v1/hospitals/{world.a.slug}/scans/{reviewed_volume.id}/"
    detail = api(getattr(world, who)).get(url).json()
    assert_shape(detail, s.ScanDetailSerializer())
    assert_shape(detail["result"], s.ScanResultSerializer())
    assert_shape(detail["advice"], s.AdviceSerializer())
    for source in detail["advice"]["sources"]:
        assert set(source) == set(s.AdviceSerializer().fields["sources"].child.fields)
    for reading in detail["result"].get("per_slice", []):
        assert_shape(reading, s.ScanResultSerializer().fields["per_slice"].child)
    for review in detail.get("reviews", []):
        assert_shape(review, s.ReviewSerializer())
    if who == "colleague":
        assert detail["reviews"] and detail["result"]["per_slice"] and "input_distance" in detail["result"]

    listed = api(getattr(world, who)).get(f"/api/v1/hospitals/{world.a.slug}/scans/").json()["results"]
    assert_shape(listed[0], s.ScanSerializer())
    assert_shape(listed[0]["result"], s.ScanResultSerializer())
