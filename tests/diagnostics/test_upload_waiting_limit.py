"""One account has at most UPLOAD_MAX_WAITING uploads waiting for their analysis at a hospital: every
hospital's analyses share the workers' queue, and an account uploading in a loop held all of them back."""

import pytest

from diagnostics.models.scans import Scan
from tests.diagnostics.helpers import finish, patient_of, stored_files, upload
from tests.diagnostics.samples import jpeg_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_waiting(settings, world, api):
    settings.UPLOAD_MAX_WAITING = 3
    scans = []
    for index in range(3):
        response = upload(api(world.owner), world.a, jpeg_bytes("glioma", index))
        assert response.status_code == 201, response.json()
        scans.append(Scan.objects.get(pk=response.json()["id"]))
    return scans


def test_an_upload_past_the_waiting_limit_is_refused_and_stores_nothing(world, api, three_waiting):
    files = stored_files()
    refused = upload(api(world.owner), world.a, jpeg_bytes("meningioma", 9))
    assert refused.status_code == 409
    assert refused.json() == {"error": "too_many_waiting",
                              "detail": "3 scans you uploaded are still waiting for their analysis; upload more "
                                        "once some of them are analysed."}
    assert Scan.objects.count() == 3 and stored_files() == files
    # The same file again is the scan already waiting, not another one.
    again = upload(api(world.owner), world.a, jpeg_bytes("glioma", 0))
    assert again.status_code == 200 and again.json()["id"] == str(three_waiting[0].id)


def test_the_limit_is_each_accounts_and_lifts_as_analyses_finish(world, api, three_waiting):
    # A doctor of the hospital uploads for the same patient: their own uploads count, not the patient's.
    for_patient = {"patient": str(patient_of(world.owner, world.a).id)}
    assert upload(api(world.doctor_a), world.a, jpeg_bytes("meningioma", 9), **for_patient).status_code == 201
    finish(three_waiting[0])
    assert upload(api(world.owner), world.a, jpeg_bytes("pituitary", 9)).status_code == 201
    assert upload(api(world.owner), world.a, jpeg_bytes("pituitary", 10)).status_code == 409
