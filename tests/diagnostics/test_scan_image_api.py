"""The scan image (diagnostics/api/views.py ScanImageView): which slice of a volume it shows by default."""

import pytest

from diagnostics.models.scans import Scan
from hospitals.models import AIResultVisibility
from tests.diagnostics import samples
from tests.diagnostics.helpers import finish, upload

pytestmark = pytest.mark.django_db


def image_url(scan, suffix=""):
    return f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/image.png{suffix}"


@pytest.fixture
def volume(world, api):
    """Patient A1's three-slice volume, analysed with the first slice flagged (the middle one is 1)."""
    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.nifti_bytes("glioma", 3)).json()["id"])
    diagnosis = finish(scan)
    assert diagnosis.slice_index == 0
    scan.refresh_from_db()
    return scan


def slice_png(client, scan, index) -> bytes:
    response = client.get(image_url(scan), {"slice": index})
    assert response.status_code == 200
    return response.content


def default_png(client, scan) -> bytes:
    response = client.get(image_url(scan))
    assert response.status_code == 200
    return response.content


def test_a_patient_awaiting_review_is_shown_the_middle_slice_not_the_flagged_one(world, api, volume):
    assert world.a.patients_see_ai_results == AIResultVisibility.AFTER_REVIEW
    owner = api(world.owner)
    assert slice_png(owner, volume, 0) != slice_png(owner, volume, 1)
    assert default_png(owner, volume) == slice_png(owner, volume, 1)


def test_staff_are_shown_the_flagged_slice(world, api, volume):
    colleague = api(world.colleague)
    assert default_png(colleague, volume) == slice_png(colleague, volume, 0)
    admin = api(world.admin_a)
    assert default_png(admin, volume) == slice_png(admin, volume, 0)


def test_a_patient_is_shown_the_flagged_slice_where_results_are_released_at_once(world, api, volume):
    world.a.patients_see_ai_results = AIResultVisibility.IMMEDIATELY
    world.a.save()
    owner = api(world.owner)
    assert default_png(owner, volume) == slice_png(owner, volume, 0)


def test_a_patient_is_shown_the_flagged_slice_once_a_doctor_has_reviewed_it(world, api, volume):
    response = api(world.colleague).post(
        f"/api/v1/hospitals/{world.a.slug}/scans/{volume.id}/review/", {"label": "glioma"}, format="multipart")
    assert response.status_code == 201, response.content
    owner = api(world.owner)
    assert default_png(owner, volume) == slice_png(owner, volume, 0)


@pytest.mark.parametrize("who", ["patient_a2", "outsider", "admin_b"])
def test_other_patients_and_outsiders_get_404(world, api, volume, who):
    client = api(getattr(world, who))
    assert client.get(image_url(volume)).status_code == 404
    assert client.get(image_url(volume), {"slice": 0}).status_code == 404


def test_a_stored_scan_is_shown_whatever_the_input_gate_says_now(world, api, volume, settings, tmp_path):
    """The gate judges uploads; the image of a scan already on record is shown even when the gate's file is
    missing or a newer gate would refuse it, instead of a server error for everyone who opens the case."""
    colleague = api(world.colleague)
    shown = slice_png(colleague, volume, 0)
    settings.INPUT_GATE_PATH = tmp_path / "missing.json"  # a deployment that lost its gate file
    assert slice_png(colleague, volume, 0) == shown
    assert default_png(api(world.owner), volume) == slice_png(api(world.owner), volume, 1)


def test_a_stored_scan_over_limits_lowered_since_its_upload_is_an_error_in_words(world, api, volume, settings):
    settings.UPLOAD_MAX_PIXELS = 100
    response = api(world.colleague).get(image_url(volume))
    assert response.status_code == 500 and response.json()["error"] == "unavailable"


def test_browsing_a_volumes_slices_decodes_its_stored_file_once(world, api, volume, monkeypatch):
    """Each slice is a request of its own: decoding the whole file for each took about a second apiece for
    a 512-slice volume."""
    from diagnostics import services, shown_slices

    shown_slices.forget_all()
    decoded = []
    decode = services.decode_on_record
    monkeypatch.setattr(services, "decode_on_record", lambda data: decoded.append(len(data)) or decode(data))
    client = api(world.doctor_a)
    pngs = [slice_png(client, volume, index) for index in (0, 1, 2, 1)]
    assert len(decoded) == 1 and pngs[1] == pngs[3] and len(set(pngs[:3])) == 3
    # A patient's request is checked as ever: the scan is theirs, the outsider's is not found.
    assert api(world.owner).get(image_url(volume), {"slice": 1}).content == pngs[1]
    assert api(world.outsider).get(image_url(volume), {"slice": 1}).status_code == 404
    assert len(decoded) == 1


def test_a_removed_scans_slices_are_forgotten_and_none_are_kept_long(world, api, volume, monkeypatch,
                                                                     django_capture_on_commit_callbacks):
    """A removed patient's pixels must not stay in a web process's memory: forgotten by the process that
    removed the scan, and by every other within KEEP_S."""
    from diagnostics import shown_slices

    shown_slices.forget_all()
    slice_png(api(world.doctor_a), volume, 1)
    assert [key[0] for key in shown_slices._kept] == [volume.id]
    with django_capture_on_commit_callbacks(execute=True):
        removed = api(world.owner).delete(f"/api/v1/hospitals/{volume.hospital.slug}/scans/{volume.id}/")
    assert removed.status_code == 204
    assert not shown_slices._kept

    from diagnostics import services

    other = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.nifti_bytes("meningioma", 4)).json()["id"])
    decoded = []
    decode = services.decode_on_record
    monkeypatch.setattr(services, "decode_on_record", lambda data: decoded.append(1) or decode(data))
    slice_png(api(world.doctor_a), other, 0)
    slice_png(api(world.doctor_a), other, 1)
    monkeypatch.setattr(shown_slices, "KEEP_S", -1)
    slice_png(api(world.doctor_a), other, 2)  # what was kept has expired: decoded again
    assert len(decoded) == 2


def test_slices_kept_are_decoded_again_under_other_limits(world, api, volume, settings):
    from diagnostics import shown_slices

    shown_slices.forget_all()
    slice_png(api(world.doctor_a), volume, 1)
    settings.UPLOAD_MAX_PIXELS = 100  # the stored file no longer decodes within the limits
    assert api(world.doctor_a).get(image_url(volume), {"slice": 1}).status_code == 500


def test_kept_slices_are_swept_out_without_another_request(world, api, volume, monkeypatch):
    """A process that shows no other scan still forgets what it keeps (a deleted hospital's scans too)."""
    import time

    from diagnostics import shown_slices

    shown_slices.forget_all()
    monkeypatch.setattr(shown_slices, "KEEP_S", 0.1)
    slice_png(api(world.doctor_a), volume, 1)
    deadline = time.monotonic() + 10
    while shown_slices._kept and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not shown_slices._kept
