"""Removing a scan (DELETE …/scans/<id>/, diagnostics.services.remove_scan).

The owner may remove their own upload until a doctor has reviewed it; an admin removes any scan of the
hospital with a reason; a colleague doctor may not; an outsider, or another patient, gets 404.
"""

import numpy as np
import pytest

from diagnostics import analysis, services
from diagnostics.models.scans import Diagnosis, Review, Scan
from diagnostics.tasks import analyse_scan
from diagnostics.training_data import count_reviewed_cases, reviewed_cases
from hospitals.audit import note_reader
from hospitals.models import AuditEvent
from tests.diagnostics import samples
from tests.diagnostics.helpers import finish, stored_files, upload
from tests.diagnostics.test_review_api import mask_png

pytestmark = pytest.mark.django_db


@pytest.fixture
def scan(world, api):
    created = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 11)).json()["id"])
    finish(created, "glioma", 0.8)
    return created


def scan_url(scan):
    return f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/"


def remove(client, scan, captured, reason=None):
    with captured(execute=True):
        return client.delete(scan_url(scan), {} if reason is None else {"reason": reason}, format="json")


def review(api, world, scan, **fields):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = {"label": "meningioma", **fields}
    if "mask" in data:
        data["mask"] = SimpleUploadedFile("m.png", data["mask"])
    response = api(world.colleague).post(f"{scan_url(scan)}review/", data, format="multipart")
    assert response.status_code == 201, response.content


def test_the_owner_removes_their_unreviewed_scan_with_its_result_and_files(world, api, scan,
                                                                          django_capture_on_commit_callbacks):
    assert len(stored_files()) == 3  # the upload, the mask and the heatmap
    response = remove(api(world.owner), scan, django_capture_on_commit_callbacks)
    assert response.status_code == 204, response.content
    assert not Scan.objects.filter(pk=scan.pk).exists() and not Diagnosis.objects.filter(scan_id=scan.pk).exists()
    assert stored_files() == []
    event = AuditEvent.objects.get(action="scan.delete")
    assert event.object_id == str(scan.pk) and event.actor_id == world.owner.pk and event.hospital_id == world.a.pk
    assert api(world.owner).get(scan_url(scan)).status_code == 404


def test_the_same_file_can_be_uploaded_again_after_its_removal(world, api, scan, django_capture_on_commit_callbacks):
    remove(api(world.owner), scan, django_capture_on_commit_callbacks)
    again = upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 11))
    assert again.status_code == 201 and again.json()["id"] != str(scan.pk) and not again.json()["duplicate"]


def test_a_reviewed_scan_is_part_of_the_record_and_stays(world, api, scan, django_capture_on_commit_callbacks):
    review(api, world, scan)
    before = stored_files()
    response = remove(api(world.owner), scan, django_capture_on_commit_callbacks)
    assert response.status_code == 409 and response.json()["error"] == "reviewed"
    assert Scan.objects.filter(pk=scan.pk).exists() and stored_files() == before
    assert not AuditEvent.objects.filter(action="scan.delete").exists()


def test_a_scan_staff_uploaded_for_the_patient_is_the_hospitals_to_remove(world, api, client,
                                                                        django_capture_on_commit_callbacks):
    from tests.diagnostics.helpers import patient_of

    record = patient_of(world.owner, world.a)
    response = upload(api(world.colleague), world.a, samples.jpeg_bytes("glioma", 12), patient=str(record.pk))
    staff_upload = Scan.objects.get(pk=response.json()["id"])
    finish(staff_upload, "glioma", 0.8)
    refused = remove(api(world.owner), staff_upload, django_capture_on_commit_callbacks)
    assert refused.status_code == 403 and refused.json()["error"] == "uploaded_by_hospital"
    # The page neither offers it nor does it.
    client.force_login(world.owner)
    assert b'id="remove-scan"' not in client.get(f"/h/st-anne/scans/{staff_upload.pk}/").content
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/h/st-anne/scans/{staff_upload.pk}/remove/")
    assert Scan.objects.filter(pk=staff_upload.pk).exists() and len(stored_files()) == 3
    assert not AuditEvent.objects.filter(action="scan.delete").exists()


def test_a_colleague_doctor_may_see_but_not_remove(world, api, scan, django_capture_on_commit_callbacks):
    response = remove(api(world.colleague), scan, django_capture_on_commit_callbacks, reason="wrong patient")
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    assert Scan.objects.filter(pk=scan.pk).exists() and len(stored_files()) == 3


@pytest.mark.parametrize("who", ["outsider", "admin_b", "patient_a2"])
def test_anyone_else_is_told_there_is_no_such_scan(world, api, scan, who, django_capture_on_commit_callbacks):
    response = remove(api(getattr(world, who)), scan, django_capture_on_commit_callbacks, reason="wrong patient")
    assert response.status_code == 404
    assert Scan.objects.filter(pk=scan.pk).exists() and len(stored_files()) == 3


def test_an_admin_removes_a_reviewed_scan_saying_why(world, api, scan, django_capture_on_commit_callbacks):
    review(api, world, scan, mask=mask_png())
    assert len(stored_files()) == 4  # and the doctor's outline
    refused = remove(api(world.admin_a), scan, django_capture_on_commit_callbacks, reason="   ")
    assert refused.status_code == 400 and refused.json()["error"] == "reason_required"
    too_long = remove(api(world.admin_a), scan, django_capture_on_commit_callbacks,
                      reason="x" * (services.REMOVAL_REASON_MAX + 1))
    assert too_long.status_code == 400 and too_long.json()["error"] == "reason_too_long"
    assert Scan.objects.filter(pk=scan.pk).exists() and len(stored_files()) == 4

    response = remove(api(world.admin_a), scan, django_capture_on_commit_callbacks,
                      reason="Uploaded for the wrong\npatient")
    assert response.status_code == 204, response.content
    assert not Review.objects.filter(scan_id=scan.pk).exists() and stored_files() == []
    event = AuditEvent.objects.get(action="scan.delete")
    assert note_reader(world.a)(event) == "Uploaded for the wrong patient" and event.actor_id == world.admin_a.pk
    # A reason may name a patient whatever the form asks, so it is sealed, never kept as the plain detail.
    assert event.detail == "" and b"wrong" not in bytes(event.sealed_note)


def test_a_reason_of_the_longest_length_allowed_is_kept_whole(world, api, scan, django_capture_on_commit_callbacks):
    reason = "r" * services.REMOVAL_REASON_MAX
    assert remove(api(world.admin_a), scan, django_capture_on_commit_callbacks, reason=reason).status_code == 204
    assert note_reader(world.a)(AuditEvent.objects.get(action="scan.delete")) == reason


def test_a_removed_scan_leaves_the_hospitals_training_data(world, api, scan, django_capture_on_commit_callbacks):
    review(api, world, scan)
    assert count_reviewed_cases(world.a) == 1
    remove(api(world.admin_a), scan, django_capture_on_commit_callbacks, reason="consent withdrawn")
    assert count_reviewed_cases(world.a) == 0 and list(reviewed_cases(world.a)) == []


def test_training_data_read_while_a_scan_is_removed_skips_it(world, api, scan, django_capture_on_commit_callbacks):
    review(api, world, scan)
    cases = reviewed_cases(world.a)  # the node has listed the cases, not read them yet
    remove(api(world.admin_a), scan, django_capture_on_commit_callbacks, reason="consent withdrawn")
    assert list(cases) == []


def test_a_scan_removed_during_its_analysis_records_nothing(world, api, django_capture_on_commit_callbacks):
    queued = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("pituitary", 5)).json()["id"])
    started = services.start_analysis(queued.id)
    remove(api(world.owner), queued, django_capture_on_commit_callbacks)
    with pytest.raises(services.ScanGone):
        services.record_diagnosis(started.id, services.AnalysisResult(
            label="glioma", probabilities={"glioma": 0.7, "meningioma": 0.1, "notumor": 0.1, "pituitary": 0.1},
            model_version_id=None, mask_png=services.encode_png(np.zeros((queued.height, queued.width), np.uint8))))
    assert stored_files() == [] and not Diagnosis.objects.exists()


def test_the_task_of_a_scan_removed_while_it_runs_ends_quietly(world, api, monkeypatch,
                                                              django_capture_on_commit_callbacks):
    queued = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("pituitary", 6)).json()["id"])
    read_and_analyse = analysis.analyse

    def removed_first(scan):
        remove(api(world.owner), scan, django_capture_on_commit_callbacks)
        return read_and_analyse(scan)  # its file has gone with it

    monkeypatch.setattr(analysis, "analyse", removed_first)
    assert analyse_scan.apply(args=[str(queued.id)]).get() == "removed"
    assert not Scan.objects.filter(pk=queued.pk).exists() and stored_files() == []
    # A task delivered after the removal finds nothing to start.
    assert analyse_scan.apply(args=[str(queued.id)]).get() == "already-finished"


def test_a_review_of_a_scan_removed_meanwhile_is_refused_with_a_sentence(world, api, scan,
                                                                         django_capture_on_commit_callbacks):
    opened = Scan.objects.get(pk=scan.pk)  # the doctor has the case open
    remove(api(world.owner), scan, django_capture_on_commit_callbacks)
    from hospitals.errors import DomainError

    with pytest.raises(DomainError) as refused:
        services.review_scan(hospital=world.a, scan=opened, reviewer=world.colleague, label="glioma",
                             mask_png=mask_png())
    assert refused.value.code == "not_found" and refused.value.status == 404
    assert stored_files() == [] and not Review.objects.exists()  # the corrected outline's file went too


def test_a_patient_is_told_by_email_when_the_hospital_removes_their_scan(world, api, scan, mailoutbox,
                                                                         django_capture_on_commit_callbacks):
    remove(api(world.admin_a), scan, django_capture_on_commit_callbacks, reason="Uploaded for the wrong patient")
    [message] = mailoutbox
    assert message.to == [world.owner.email] and "removed" in message.subject
    assert "contact St Anne" in message.body and "wrong patient" not in message.body  # the reason is the hospital's
    uploaded = scan.created_at.strftime("%H:%M:%S")  # named to the second: one patient's uploads share minutes
    assert f"you uploaded on {scan.created_at.day} " in message.body and f" at {uploaded}, " in message.body


def test_a_patient_removing_their_own_scan_is_not_emailed_about_it(world, api, scan, mailoutbox,
                                                                   django_capture_on_commit_callbacks):
    remove(api(world.owner), scan, django_capture_on_commit_callbacks)
    assert mailoutbox == []


def test_a_reason_that_is_not_text_is_refused(world, api, scan, django_capture_on_commit_callbacks):
    response = remove(api(world.admin_a), scan, django_capture_on_commit_callbacks, reason={"why": "x"})
    assert response.status_code == 400 and response.json()["error"] == "invalid"
    assert Scan.objects.filter(pk=scan.pk).exists()
