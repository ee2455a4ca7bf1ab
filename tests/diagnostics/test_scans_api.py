"""Scan upload, listing, detail and images (diagnostics/api/views.py), with no worker: tasks are
scheduled on commit, and these tests never commit."""

import datetime
import io
import logging
from urllib.parse import urlencode

import numpy as np
import pytest
from django.db import connection
from PIL import Image

from diagnostics.models.scans import Diagnosis, Scan, ScanStatus
from diagnostics import services
from diagnostics.services import content_digest
from hospitals import services as hospitals_services
from hospitals.models import AIResultVisibility, AuditEvent
from tests.diagnostics import samples
from tests.diagnostics.helpers import finish, patient_of, stored_files, upload, upload_raw
from tests.factories import make_patient

pytestmark = pytest.mark.django_db


def scans_url(hospital, suffix=""):
    return f"/api/v1/hospitals/{hospital.slug}/scans/{suffix}"


# --- upload ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(samples.GOOD_FORMATS))
def test_patient_uploads_every_format_recognised_by_content(world, api, fmt):
    factory, _, kind = samples.GOOD_FORMATS[fmt]
    # A misleading name: the type comes from the bytes.
    response = upload(api(world.owner), world.a, factory(), name="upload.bin")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["kind"] == kind and body["duplicate"] is False
    scan = Scan.objects.get(pk=body["id"])
    assert scan.hospital == world.a and scan.patient == patient_of(world.owner, world.a)
    assert scan.uploaded_by == world.owner
    assert (scan.width, scan.height) == (224, 224)
    assert scan.slice_count == (3 if fmt in ("dicom_multiframe", "dicom_zip", "nifti", "nifti_gz") else 1)
    assert len(stored_files()) == 1
    # The blob is ciphertext under a random name.
    blob = stored_files()[0]
    assert str(world.a.id) in str(blob) and blob.read_bytes()[:3] == b"NF1"
    assert factory()[:64] not in blob.read_bytes()


def test_a_large_upload_is_never_spooled_to_a_temporary_file(world, api, monkeypatch):
    """An upload is the scan in the clear (a DICOM header names the patient): a temporary file of it
    would outlive a killed worker on disk."""
    from django.core.files import uploadhandler

    spooled = []

    def temporary_file(*args, **kwargs):
        spooled.append(args)
        raise AssertionError("an upload was spooled to disk")

    monkeypatch.setattr(uploadhandler, "TemporaryUploadedFile", temporary_file)
    # A real MRI enlarged to 2600 px, as 16 bits with noise in the low bits: over 6 MB as PNG.
    enlarged = Image.fromarray(samples.slice_array("glioma", 0).astype(np.float32)).resize((2600, 2600))
    noise = np.random.default_rng(0).integers(0, 64, size=(2600, 2600))
    big = (np.asarray(enlarged) * 200 + noise).clip(0, 65535).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(big).save(buffer, format="PNG")
    assert buffer.tell() > 6 * 1024 * 1024
    response = upload(api(world.owner), world.a, buffer.getvalue(), name="large.png")
    assert spooled == [] and response.status_code == 201, response.content


def test_dicom_identifiers_are_encrypted_and_never_logged(world, api, caplog):
    caplog.set_level(logging.DEBUG)
    response = upload(api(world.owner), world.a, samples.dicom_bytes(), name="scan.dcm")
    assert response.status_code == 201
    scan = Scan.objects.get(pk=response.json()["id"])
    assert scan.source_patient_id == samples.DICOM_PATIENT_ID
    assert scan.source_patient_name == samples.DICOM_PATIENT_NAME
    with connection.cursor() as cursor:
        cursor.execute("SELECT source_patient_id, source_patient_name FROM diagnostics_scan WHERE id = %s", [scan.id])
        raw = " ".join(cursor.fetchone())
    assert samples.DICOM_PATIENT_ID not in raw and "Testpatient" not in raw
    assert samples.DICOM_PATIENT_ID not in caplog.text and "Testpatient" not in caplog.text
    # Nor does the API hand them to a patient: only the hospital's staff check them against the record.
    assert samples.DICOM_PATIENT_ID not in response.content.decode()
    assert "file_identity" not in response.json() and "identity_differs" not in response.json()


def test_staff_see_whom_a_dicom_file_names_and_where_it_differs_from_the_record(world, api):
    patient = make_patient(world.a, medical_record_number="MRN-777", date_of_birth=datetime.date(1970, 1, 1))
    response = upload(api(world.colleague), world.a, samples.dicom_bytes(), name="scan.dcm", patient=str(patient.id))
    assert response.status_code == 201, response.content
    assert response.json()["identity_differs"] is True
    assert response.json()["file_identity"] == {
        "patient_name": "Testpatient, Ada", "patient_id": samples.DICOM_PATIENT_ID, "birth_date": "1970-01-01",
        "differs_from_record": ["patient_id"],
    }
    scan_url = scans_url(world.a, f"{response.json()['id']}/")
    assert [row["identity_differs"] for row in api(world.colleague).get(scans_url(world.a)).json()["results"]] == [True]
    assert api(world.outsider).get(scan_url).status_code == 404

    # The record was wrong, not the file: corrected, the scan no longer stands out.
    hospitals_services.update_patient(hospital=world.a, patient=patient, actor=world.admin_a,
                                      medical_record_number=samples.DICOM_PATIENT_ID.lower())
    detail = api(world.colleague).get(scan_url).json()
    assert detail["identity_differs"] is False and detail["file_identity"]["differs_from_record"] == []


def test_a_file_that_names_no_patient_has_no_identity_to_check(world, api):
    patient = make_patient(world.a, medical_record_number="MRN-777")
    response = upload(api(world.colleague), world.a, samples.jpeg_bytes(), patient=str(patient.id))
    assert response.status_code == 201
    assert response.json()["file_identity"] is None and response.json()["identity_differs"] is False


def test_doctor_uploads_for_a_patient_of_the_hospital(world, api):
    patient = make_patient(world.a)
    response = upload(api(world.doctor_a), world.a, samples.jpeg_bytes(), patient=str(patient.id))
    assert response.status_code == 201
    assert Scan.objects.get(pk=response.json()["id"]).patient == patient


def test_doctor_must_name_the_patient(world, api):
    response = upload(api(world.doctor_a), world.a, samples.jpeg_bytes())
    assert response.status_code == 400 and response.json()["error"] == "patient_required"
    assert not Scan.objects.exists() and not stored_files()


def test_doctor_cannot_upload_for_another_hospitals_patient(world, api):
    response = upload(api(world.doctor_a), world.a, samples.jpeg_bytes(), patient=str(patient_of(world.patient_b, world.b).id))
    assert response.status_code == 404
    assert not Scan.objects.exists() and not stored_files()


def test_same_file_twice_returns_the_existing_scan(world, api):
    data = samples.jpeg_bytes("pituitary", 3)
    first = upload(api(world.owner), world.a, data)
    second = upload(api(world.owner), world.a, data, name="again.jpg")
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["id"] == first.json()["id"] and second.json()["duplicate"] is True
    assert Scan.objects.count() == 1 and len(stored_files()) == 1


def _failed(scan, code="unavailable"):
    services.start_analysis(scan.id)
    services.fail_scan(scan.id, code, "A service the analysis needs stayed unavailable; upload again.")
    scan.refresh_from_db()
    assert scan.status == ScanStatus.FAILED
    return scan


def test_the_same_file_again_analyses_a_failed_scan_afresh_keeping_its_file(
        world, api, django_capture_on_commit_callbacks):
    data = samples.jpeg_bytes("pituitary", 4)
    scan = _failed(Scan.objects.get(pk=upload(api(world.owner), world.a, data).json()["id"]))
    blob_path = scan.blob_path
    with django_capture_on_commit_callbacks() as callbacks:
        again = upload(api(world.owner), world.a, data)
    assert again.status_code == 200 and again.json()["id"] == str(scan.id)
    assert again.json()["status"] == "queued" and again.json()["duplicate"] is True
    scan.refresh_from_db()
    assert (scan.status, scan.failure_code, scan.failure_reason, scan.attempts) == (ScanStatus.QUEUED, "", "", 0)
    assert scan.blob_path == blob_path and len(stored_files()) == 1
    assert any(getattr(c, "func", None) is services.enqueue_analysis for c in callbacks)
    assert AuditEvent.objects.filter(action="scan.requeue", object_id=str(scan.id)).exists()


def test_a_failed_scan_removed_before_its_requeue_is_reported_gone_and_nothing_is_stored(world, api):
    """The patient removes the failed scan in one tab while uploading its file again in another: the
    requeue finds no row to lock. It says the scan is gone (the upload then stores a new scan) instead of
    a server error, and keeps none of the replacement file it wrote for the vanished scan."""
    from hospitals.storage import delete_blob

    data = samples.jpeg_bytes("pituitary", 7)
    scan = _failed(Scan.objects.get(pk=upload(api(world.owner), world.a, data).json()["id"]))
    # What remove_scan leaves once committed: no row, no file.
    Scan.objects.filter(pk=scan.pk).delete()
    delete_blob(scan.blob_path)
    with pytest.raises(services.ScanGone):
        services.requeue_failed_scan(scan, data, actor=world.owner)
    assert stored_files() == [] and not Scan.objects.exists()


def test_a_failed_scan_whose_file_was_lost_gets_the_uploaded_file_back(world, api, settings):
    from pathlib import Path

    from hospitals.storage import read_blob

    data = samples.jpeg_bytes("pituitary", 5)
    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, data).json()["id"])
    (Path(settings.MEDIA_ROOT) / scan.blob_path).unlink()
    scan = _failed(scan, "unreadable_blob")
    assert upload(api(world.owner), world.a, data).status_code == 200
    scan.refresh_from_db()
    assert scan.status == ScanStatus.QUEUED and len(stored_files()) == 1
    assert read_blob(world.a, scan.blob_path, record_type=services.SCAN_BLOB, record_id=scan.id,
                     sha256=scan.blob_sha256) == data


def test_a_failed_scan_is_requeued_even_when_its_damaged_old_file_cannot_be_removed(
        world, api, settings, django_capture_on_commit_callbacks, caplog):
    from pathlib import Path

    data = samples.jpeg_bytes("pituitary", 6)
    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, data).json()["id"])
    old = Path(settings.MEDIA_ROOT) / scan.blob_path
    old.unlink()
    old.mkdir()  # unreadable as a blob, and unlink() refuses it: the clean-up after the commit fails
    (old / "keep").write_bytes(b"x")
    scan = _failed(scan, "unreadable_blob")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert upload(api(world.owner), world.a, data).status_code == 200
    scan.refresh_from_db()
    assert scan.status == ScanStatus.QUEUED and (Path(settings.MEDIA_ROOT) / scan.blob_path).is_file()
    # The failed clean-up was logged, and the analysis was still scheduled after it.
    assert "delete_blob" in caplog.text
    assert [getattr(c, "func", None) for c in callbacks][-1] is services.enqueue_analysis


def test_dedupe_digest_is_keyed_per_hospital(world, api):
    data = samples.jpeg_bytes("glioma", 5)
    a = upload(api(world.owner), world.a, data).json()
    b = upload(api(world.patient_b), world.b, data).json()
    scan_a, scan_b = Scan.objects.get(pk=a["id"]), Scan.objects.get(pk=b["id"])
    assert scan_a.content_digest != scan_b.content_digest
    assert content_digest(world.a, data) == scan_a.content_digest
    import hashlib

    assert hashlib.sha256(data).hexdigest() not in (scan_a.content_digest, scan_b.content_digest)


def test_another_patient_uploading_the_same_file_gets_their_own_scan(world, api):
    data = samples.jpeg_bytes("glioma", 6)
    mine = upload(api(world.owner), world.a, data).json()
    theirs = upload(api(world.patient_a2), world.a, data)
    assert theirs.status_code == 201 and theirs.json()["id"] != mine["id"]


@pytest.mark.parametrize("case", sorted(samples.BAD_INPUTS))
def test_bad_input_is_refused_with_a_clear_error_and_leaves_nothing(world, api, case):
    factory, name, code = samples.BAD_INPUTS[case]
    response = upload_raw(api(world.owner), world.a, factory(), name=name)
    assert 400 <= response.status_code < 500, response.content
    body = response.json()
    assert body["error"] == code, body
    assert len(body["detail"]) > 10
    # A sentence for a person: no decoder's internals (object addresses, multi-line plugin lists).
    assert "\n" not in body["detail"] and " at 0x" not in body["detail"], body["detail"]
    assert not Scan.objects.exists()
    assert not stored_files()


def test_size_limit_is_configurable(world, api, settings):
    settings.UPLOAD_MAX_BYTES = 2_000
    response = upload(api(world.owner), world.a, samples.jpeg_bytes())
    assert response.status_code == 413 and response.json()["error"] == "too_large"
    assert response.json()["detail"] == "The file is larger than 2 KB, the most that can be uploaded."
    assert not Scan.objects.exists() and not stored_files()


def test_a_body_declared_over_the_limit_is_refused_in_megabytes_before_it_is_read(world, api, settings):
    settings.UPLOAD_MAX_BYTES = 1024 * 1024
    response = upload(api(world.owner), world.a, b"\xff\xd8" + bytes(2 * 1024 * 1024))
    assert response.status_code == 413 and response.json() == {
        "error": "too_large", "detail": "The file is larger than 1 MB, the most that can be uploaded."}
    assert not Scan.objects.exists() and not stored_files()


def test_pixel_and_frame_limits_are_configurable(world, api, settings):
    settings.UPLOAD_MAX_PIXELS = 100 * 100
    response = upload(api(world.owner), world.a, samples.png_bytes())
    assert response.status_code == 413 and response.json()["error"] == "too_many_pixels"
    assert response.json()["detail"] == ("The image is 224 × 224 pixels, more than the limit of 10,000 pixels "
                                         "(about 100 × 100).")
    settings.UPLOAD_MAX_PIXELS = 4096 * 4096
    settings.UPLOAD_MAX_PIXELS = 4096 * 4096
    settings.UPLOAD_MAX_FRAMES = 2
    assert upload(api(world.owner), world.a, samples.nifti_bytes(count=3)).json()["error"] == "too_many_frames"
    assert not Scan.objects.exists() and not stored_files()


def test_missing_file_field(world, api):
    response = api(world.owner).post(scans_url(world.a), {"other": "x"}, format="multipart")
    assert response.status_code == 400 and response.json()["error"] == "no_file"


def test_upload_by_outsider_and_anonymous(world, api):
    assert upload(api(world.outsider), world.a, samples.jpeg_bytes()).status_code == 404
    assert upload(api(), world.a, samples.jpeg_bytes()).status_code in (401, 403)
    assert not Scan.objects.exists() and not stored_files()


# --- listing and detail ------------------------------------------------------------------------------


@pytest.fixture
def scans(world, api):
    """Two scans of patient A1, one of patient A2, one in hospital B."""
    own1 = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 1)).json()["id"])
    own2 = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("notumor", 1)).json()["id"])
    other = Scan.objects.get(pk=upload(api(world.patient_a2), world.a, samples.jpeg_bytes("pituitary", 1)).json()["id"])
    b = Scan.objects.get(pk=upload(api(world.patient_b), world.b, samples.jpeg_bytes("glioma", 2)).json()["id"])
    return own1, own2, other, b


def ids(response):
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["results"]}


def test_patient_lists_only_their_own_scans(world, api, scans):
    own1, own2, other, b = scans
    assert ids(api(world.owner).get(scans_url(world.a))) == {str(own1.id), str(own2.id)}


def test_doctor_and_admin_list_every_scan_of_the_hospital(world, api, scans):
    own1, own2, other, b = scans
    expected = {str(own1.id), str(own2.id), str(other.id)}
    assert ids(api(world.doctor_a).get(scans_url(world.a))) == expected
    assert ids(api(world.admin_a).get(scans_url(world.a))) == expected


def test_list_filters(world, api, scans):
    own1, own2, other, b = scans
    finish(own1, "glioma", 0.95)
    finish(own2, "notumor", 0.55)
    doctor = api(world.doctor_a)
    assert ids(doctor.get(scans_url(world.a), {"status": "queued"})) == {str(other.id)}
    assert ids(doctor.get(scans_url(world.a), {"status": "done"})) == {str(own1.id), str(own2.id)}
    assert ids(doctor.get(scans_url(world.a), {"label": "glioma"})) == {str(own1.id)}
    assert ids(doctor.get(scans_url(world.a), {"min_confidence": "0.9"})) == {str(own1.id)}
    assert ids(doctor.get(scans_url(world.a), {"max_confidence": "0.6"})) == {str(own2.id)}
    assert ids(doctor.get(scans_url(world.a), {"review_state": "unreviewed"})) == {
        str(own1.id), str(own2.id), str(other.id)}
    bad = doctor.get(scans_url(world.a), {"status": "nonsense"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_filter"
    assert doctor.get(scans_url(world.a), {"min_confidence": "2"}).status_code == 400


def test_reviewed_lists_confirmed_and_corrected_together_newest_first(world, api, scans):
    own1, own2, other, b = scans
    for scan, label in ((own1, "glioma"), (own2, "notumor"), (other, "pituitary")):
        finish(scan, label, 0.9)
    services.review_scan(hospital=world.a, scan=own1, reviewer=world.doctor_a, label="glioma")
    services.review_scan(hospital=world.a, scan=own2, reviewer=world.doctor_a, label="meningioma")
    response = api(world.doctor_a).get(scans_url(world.a), {"review_state": "reviewed", "limit": 1})
    assert response.json()["count"] == 2 and response.json()["next"]
    assert [item["id"] for item in response.json()["results"]] == [str(own2.id)]
    everything = api(world.doctor_a).get(scans_url(world.a), {"review_state": "reviewed"})
    assert ids(everything) == {str(own1.id), str(own2.id)}
    bad = api(world.doctor_a).get(scans_url(world.a), {"review_state": "someday"})
    assert bad.status_code == 400 and "or reviewed" in bad.json()["detail"]


def search_url(hospital):
    return f"/api/v1/hospitals/{hospital.slug}/scans/search/"


def test_record_number_finds_one_patients_scans_without_decrypting_and_is_audited(world, api, scans):
    own1, own2, other, b = scans
    patient = patient_of(world.patient_a2, world.a)
    hospitals_services.update_patient(hospital=world.a, patient=patient, actor=world.admin_a,
                                      medical_record_number="RN-4471")
    in_b = patient_of(world.patient_b, world.b)
    hospitals_services.update_patient(hospital=world.b, patient=in_b, actor=world.admin_b,
                                      medical_record_number="RN-9000")
    doctor = api(world.doctor_a)

    def search(client, record_number, **query):
        return client.post(search_url(world.a) + (f"?{urlencode(query)}" if query else ""),
                           {"mrn": record_number}, format="json")

    # Exact number, with the case and spaces a person types.
    assert ids(search(doctor, " rn-4471 ")) == {str(other.id)}
    assert AuditEvent.objects.filter(action="patient.find_by_mrn", object_id=str(patient.pk),
                                     actor_id=world.doctor_a.pk).count() == 1
    assert ids(search(doctor, "RN-447")) == set()
    # Another hospital's record number finds nothing here, and a patient finds no one else's scans.
    assert ids(search(doctor, "RN-9000")) == set()
    assert ids(search(api(world.owner), "RN-4471")) == set()
    # The list's filters and paging stay in the query string, and the next page is posted the same way.
    assert ids(search(doctor, "RN-4471", review_state="reviewed")) == set()
    paged = search(doctor, "RN-4471", limit=1).json()
    assert paged["count"] == 1 and "4471" not in str(paged)
    # The outsider learns nothing, not even that the hospital exists.
    assert search(api(world.outsider), "RN-4471").status_code == 404


def test_a_record_number_is_never_taken_from_a_url(world, api, scans):
    """URLs are kept by access logs, proxies and browser history; a record number names a patient."""
    response = api(world.doctor_a).get(scans_url(world.a), {"mrn": "RN-4471"})
    assert response.status_code == 400 and response.json()["error"] == "record_number_in_url"
    assert "search/" in response.json()["detail"]
    missing = api(world.doctor_a).post(search_url(world.a), {}, format="json")
    assert missing.status_code == 400 and missing.json()["error"] == "mrn_required"


def test_label_filter_does_not_reveal_unreviewed_results_to_a_patient(world, api, scans):
    own1, *_ = scans
    finish(own1, "glioma")
    assert ids(api(world.owner).get(scans_url(world.a), {"label": "glioma"})) == set()


def test_detail_for_owner_colleague_outsider_and_anonymous(world, api, scans):
    own1, *_ = scans
    url = scans_url(world.a, f"{own1.id}/")
    assert api(world.owner).get(url).status_code == 200
    assert api(world.colleague).get(url).status_code == 200
    assert api(world.patient_a2).get(url).status_code == 404
    response = api(world.outsider).get(url)
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert api(world.outsider).get(scans_url(world.b, f"{own1.id}/")).status_code == 404
    assert api().get(url).status_code in (401, 403)
    assert api(world.colleague).get(scans_url(world.a, "not-a-uuid/")).status_code == 404


def test_every_scan_url_is_404_for_the_outsider(world, api, scans):
    own1, *_ = scans
    finish(own1)
    for suffix in ("", "image.png", "mask.png", "heatmap.png"):
        assert api(world.outsider).get(scans_url(world.a, f"{own1.id}/{suffix}")).status_code == 404, suffix
        assert api().get(scans_url(world.a, f"{own1.id}/{suffix}")).status_code in (401, 403), suffix
    assert api(world.outsider).post(scans_url(world.a, f"{own1.id}/review/"), {"label": "glioma"}).status_code == 404
    assert api(world.outsider).get(scans_url(world.a)).status_code == 404
    assert api().get(scans_url(world.a)).status_code in (401, 403)


def test_reads_are_audited(world, api, scans):
    own1, *_ = scans
    api(world.colleague).get(scans_url(world.a, f"{own1.id}/"))
    event = AuditEvent.objects.filter(action="scan.read", object_id=str(own1.id)).get()
    assert event.actor_id == world.colleague.pk and event.hospital_id == world.a.id


def test_detail_shows_result_model_and_advice_to_staff(world, api, scans):
    own1, *_ = scans
    finish(own1, "meningioma", 0.8)
    body = api(world.colleague).get(scans_url(world.a, f"{own1.id}/")).json()
    assert body["status"] == "done" and body["label"] == "meningioma"
    result = body["result"]
    assert result["probabilities"]["meningioma"] == pytest.approx(0.8)
    assert abs(sum(result["probabilities"].values()) - 1) < 1e-6
    assert result["bbox"] == {"top": 10, "left": 20, "height": 20, "width": 30}
    assert result["tumour_area_px"] == 600.0 and "model_ms" in result["timings_ms"]
    assert "model_version" in result
    advice = body["advice"]
    assert advice["label"] == "meningioma" and advice["emergency_symptoms"] and advice["sources"]
    assert "doctor" in advice["reminder"]
    assert body["review_state"] == "unreviewed"


def test_patient_sees_result_only_after_review_by_default(world, api, scans):
    own1, *_ = scans
    finish(own1, "glioma")
    assert world.a.patients_see_ai_results == AIResultVisibility.AFTER_REVIEW
    body = api(world.owner).get(scans_url(world.a, f"{own1.id}/")).json()
    assert body["status"] == "done" and body["awaiting_review"] is True
    assert body["result"] is None and body["label"] is None
    # What to do while waiting, the emergency signs included, but nothing of the reading.
    assert body["advice"]["label"] is None and body["advice"]["emergency_symptoms"]
    assert "glioma" not in str(body)
    assert api(world.owner).get(scans_url(world.a, f"{own1.id}/mask.png")).status_code == 404
    assert api(world.owner).get(scans_url(world.a, f"{own1.id}/heatmap.png")).status_code == 404
    # The scan itself is theirs to see.
    assert api(world.owner).get(scans_url(world.a, f"{own1.id}/image.png")).status_code == 200


def test_patient_sees_preliminary_result_when_the_hospital_allows_it(world, api, scans):
    own1, *_ = scans
    finish(own1, "glioma")
    world.a.patients_see_ai_results = AIResultVisibility.IMMEDIATELY
    world.a.save()
    body = api(world.owner).get(scans_url(world.a, f"{own1.id}/")).json()
    assert body["label"] == "glioma" and body["preliminary"] is True
    assert body["advice"]["preliminary"] is True and body["advice"]["preliminary_notice"]
    assert "reviews" not in body  # doctors' notes are for staff
    assert api(world.owner).get(scans_url(world.a, f"{own1.id}/mask.png")).status_code == 200


# --- images ------------------------------------------------------------------------------------------


def png(response) -> np.ndarray:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "no-store"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_images_are_decrypted_on_the_fly_and_never_cached(world, api, scans):
    own1, *_ = scans
    finish(own1)
    doctor = api(world.colleague)
    image = png(doctor.get(scans_url(world.a, f"{own1.id}/image.png"), HTTP_ACCEPT="image/png"))
    assert image.shape == (224, 224)
    assert np.array_equal(image, samples.slice_array("glioma", 1))
    mask = png(doctor.get(scans_url(world.a, f"{own1.id}/mask.png")))
    assert mask.shape == (224, 224) and set(np.unique(mask)) == {0, 255}
    heat = png(doctor.get(scans_url(world.a, f"{own1.id}/heatmap.png")))
    assert heat.shape == (224, 224, 4) and heat[..., 3].max() > 0


def test_image_of_a_volume_slice(world, api):
    body = upload(api(world.owner), world.a, samples.nifti_bytes("glioma", 3)).json()
    client = api(world.colleague)
    for index in range(3):
        png(client.get(scans_url(world.a, f"{body['id']}/image.png"), {"slice": index}))
    assert client.get(scans_url(world.a, f"{body['id']}/image.png"), {"slice": 3}).status_code == 404


def test_tampered_blob_is_an_error_not_an_image(world, api, scans):
    own1, *_ = scans
    path = stored_files()[0] if len(stored_files()) == 1 else None
    scan_blob = next(p for p in stored_files() if own1.blob_path.endswith(p.name))
    data = bytearray(scan_blob.read_bytes())
    data[-1] ^= 1
    scan_blob.write_bytes(bytes(data))
    response = api(world.colleague).get(scans_url(world.a, f"{own1.id}/image.png"))
    assert response.status_code == 500 and response.json()["error"] == "unavailable"
    assert path is None or path.exists()


def test_no_result_images_before_the_analysis(world, api, scans):
    own1, *_ = scans
    assert Diagnosis.objects.count() == 0 and own1.status == ScanStatus.QUEUED
    assert api(world.colleague).get(scans_url(world.a, f"{own1.id}/mask.png")).status_code == 404


# --- failures after the upload -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_keeps_the_stored_scan_queued_with_its_file(world, api, broker_down, caplog):
    # Committed for real: the task is scheduled when the upload's own transaction commits.
    response = upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 40))
    assert response.status_code == 201, response.content
    scan = Scan.objects.get(pk=response.json()["id"])
    assert scan.status == ScanStatus.QUEUED
    assert [p.name for p in stored_files()] == [scan.blob_path.rsplit("/", 1)[-1]]
    assert f"scan {scan.id} stays queued" in caplog.text


def test_the_decoder_behind_every_upload_words_its_size_limit_like_the_api(settings):
    from diagnostics import services

    settings.UPLOAD_MAX_BYTES = 1024
    with pytest.raises(services.UploadRejected) as refused:
        services.decode_upload(bytes(1025))
    assert (refused.value.code, refused.value.status) == ("too_large", 413)
    assert refused.value.detail == "The file is larger than 1 KB, the most that can be uploaded."


def test_scan_times_are_written_as_every_other_body_writes_them(world, api):
    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes()).json()["id"])
    finish(scan, "glioma", 0.9)
    api(world.colleague).post(scans_url(world.a, f"{scan.id}/review/"), {"label": "glioma"}, format="json")
    body = api(world.colleague).get(scans_url(world.a, f"{scan.id}/")).json()
    patient = api(world.colleague).get(f"/api/v1/hospitals/{world.a.slug}/patients/{scan.patient_id}/").json()
    for moment in (body["created_at"], body["finished_at"], body["reviewed_at"], body["reviews"][0]["at"],
                   patient["created_at"]):
        assert moment.endswith("Z"), moment


def test_a_record_number_search_with_an_unusable_number_names_the_field(world, api):
    search = scans_url(world.a, "search/")
    refused = api(world.colleague).post(search, {"mrn": "9" * 65}, format="json")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid" and "mrn" in refused.json()["fields"]
    missing = api(world.colleague).post(search, {}, format="json")
    assert missing.status_code == 400 and missing.json()["error"] == "mrn_required"



def test_a_content_length_that_is_not_a_number_is_refused_in_words(world, api):
    response = api(world.owner).post(scans_url(world.a), data=b"x", content_type="application/octet-stream",
                                     CONTENT_LENGTH="lots")
    assert response.status_code == 400 and response.json()["error"] == "invalid_length"
    assert not Scan.objects.exists()
