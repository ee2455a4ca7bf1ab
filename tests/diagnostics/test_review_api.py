"""Doctor review (POST …/scans/<id>/review/, diagnostics.services.review_scan)."""

import datetime
import io
import smtplib

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from PIL import Image, PngImagePlugin

from diagnostics.models.scans import Review, Scan
from tests.diagnostics import samples
from tests.diagnostics.helpers import finish, stored_files, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def scan(world, api):
    created = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 9)).json()["id"])
    finish(created, "glioma", 0.7)
    return created


def review_url(scan):
    return f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/review/"


def mask_png(shape=(224, 224)) -> bytes:
    mask = np.zeros(shape, dtype=np.uint8)
    mask[50:90, 60:120] = 255
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")
    return buffer.getvalue()


def test_doctor_confirms_the_label(world, api, scan):
    response = api(world.colleague).post(review_url(scan), {"label": "glioma"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["review_state"] == "confirmed" and body["label"] == "glioma"
    review = Review.objects.get(scan=scan)
    assert review.reviewer == world.colleague and not review.label_changed and review.previous_label == "glioma"


def test_doctor_changes_the_label_with_notes_and_a_mask(world, api, scan):
    response = api(world.colleague).post(
        review_url(scan),
        {"label": "meningioma", "notes": "Dural tail; extra-axial.", "mask": SimpleUploadedFile("m.png", mask_png())},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["review_state"] == "corrected" and body["label"] == "meningioma"
    assert body["result"]["label"] == "glioma"  # the model's answer is kept beside the doctor's
    [entry] = body["reviews"]
    assert entry["label_changed"] and entry["mask_changed"] and entry["notes"] == "Dural tail; extra-axial."
    assert entry["reviewer"] == world.colleague.pk and entry["reviewer_name"] == "doctor1@st-anne.example"
    with connection.cursor() as cursor:
        cursor.execute("SELECT notes FROM diagnostics_review")
        assert "Dural" not in cursor.fetchone()[0]
    # The corrected mask is what mask.png serves now.
    served = api(world.colleague).get(f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/mask.png")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(served.content))) > 0,
                          np.asarray(Image.open(io.BytesIO(mask_png()))) > 0)


def test_every_review_is_kept(world, api, scan):
    api(world.colleague).post(review_url(scan), {"label": "meningioma"}, format="json")
    api(world.doctor_a2).post(review_url(scan), {"label": "glioma"}, format="json")
    reviews = list(Review.objects.filter(scan=scan).order_by("created_at"))
    assert [(r.reviewer, r.previous_label, r.label) for r in reviews] == [
        (world.colleague, "glioma", "meningioma"), (world.doctor_a2, "meningioma", "glioma")]
    scan.refresh_from_db()
    assert scan.reviewed_label == "glioma" and scan.review_state == "confirmed"


def test_reviews_name_the_reviewer_to_staff_only(world, api, scan):
    world.doctor_a2.first_name, world.doctor_a2.last_name = "Rosalind", "Franklin"
    world.doctor_a2.save()
    api(world.doctor_a2).post(review_url(scan), {"label": "glioma"}, format="json")
    detail = f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/"
    [entry] = api(world.colleague).get(detail).json()["reviews"]
    assert entry["reviewer_name"] == "Rosalind Franklin"
    assert "reviews" not in api(world.owner).get(detail).json()
    world.doctor_a2.delete()
    [entry] = api(world.colleague).get(detail).json()["reviews"]
    assert entry["reviewer"] is None and entry["reviewer_name"] is None


def test_patient_sees_the_reviewed_result(world, api, scan):
    api(world.colleague).post(review_url(scan), {"label": "glioma"}, format="json")
    body = api(world.owner).get(f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/").json()
    assert body["label"] == "glioma" and body["preliminary"] is False and body["advice"]["label"] == "glioma"


def test_bad_reviews(world, api, scan):
    doctor = api(world.colleague)
    assert doctor.post(review_url(scan), {"label": "tumour"}, format="json").status_code == 400
    wrong_size = doctor.post(review_url(scan), {"label": "glioma", "mask": SimpleUploadedFile("m.png", mask_png((10, 10)))},
                             format="multipart")
    assert wrong_size.status_code == 422 and wrong_size.json()["error"] == "invalid_mask"
    not_png = doctor.post(review_url(scan), {"label": "glioma", "mask": SimpleUploadedFile("m.png", samples.pdf_bytes())},
                          format="multipart")
    assert not_png.status_code == 415 and not_png.json()["error"] == "invalid_mask"
    assert not Review.objects.exists()
    assert len(stored_files()) == 3  # the scan, its mask and heatmap; no orphaned review mask


def test_a_scan_still_queued_cannot_be_reviewed(world, api):
    queued = upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 10)).json()
    response = api(world.colleague).post(f"/api/v1/hospitals/{world.a.slug}/scans/{queued['id']}/review/",
                                         {"label": "glioma"}, format="json")
    assert response.status_code == 409 and response.json()["error"] == "not_ready"


def test_who_may_review(world, api, scan):
    assert api(world.owner).post(review_url(scan), {"label": "glioma"}, format="json").status_code == 403
    assert api(world.admin_a).post(review_url(scan), {"label": "glioma"}, format="json").status_code == 403
    assert api(world.patient_a2).post(review_url(scan), {"label": "glioma"}, format="json").status_code == 404
    assert api(world.outsider).post(review_url(scan), {"label": "glioma"}, format="json").status_code == 404
    assert api().post(review_url(scan), {"label": "glioma"}, format="json").status_code in (401, 403)
    assert not Review.objects.exists()


def test_a_mask_declaring_a_huge_image_is_refused_clearly(world, api, scan):
    response = api(world.colleague).post(
        review_url(scan), {"label": "glioma", "mask": SimpleUploadedFile("m.png", samples.png_bomb(20000))},
        format="multipart")
    assert response.status_code == 400 and response.json()["error"] == "invalid_mask"
    assert "224x224" in response.json()["detail"]
    assert not Review.objects.exists() and len(stored_files()) == 3


def test_the_patient_is_told_by_email_once_without_the_result(world, api, scan, mailoutbox,
                                                              django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(world.colleague).post(review_url(scan), {"label": "meningioma"}, format="json")
    assert response.status_code == 201
    [message] = mailoutbox
    assert message.to == [world.owner.email] and "St Anne" in message.subject
    assert f"/h/{scan.hospital.slug}/scans/{scan.id}/" in message.body
    # Email is not a private channel: no diagnosis in it, neither the doctor's nor the software's.
    assert not any(word in (message.subject + message.body).lower()
                   for word in ("glioma", "meningioma", "pituitary", "tumour", "notumor"))
    with django_capture_on_commit_callbacks(execute=True):
        api(world.doctor_a2).post(review_url(scan), {"label": "glioma"}, format="json")
    assert len(mailoutbox) == 1  # a second opinion changes the page, not the inbox


def test_a_mail_server_that_fails_does_not_undo_the_review(world, api, scan, monkeypatch, mailoutbox, caplog,
                                                           django_capture_on_commit_callbacks):
    def refuse(*args, recipient_list, **kwargs):
        # What smtplib raises for a refused recipient: its text holds the patient's address.
        raise smtplib.SMTPRecipientsRefused({recipient_list[0]: (550, b"mailbox unavailable")})

    monkeypatch.setattr("diagnostics.patient_mail.send_mail", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        response = api(world.colleague).post(review_url(scan), {"label": "glioma"}, format="json")
    assert response.status_code == 201 and Review.objects.filter(scan=scan).count() == 1
    assert mailoutbox == []
    assert "SMTPRecipientsRefused" in caplog.text and world.owner.email not in caplog.text


def test_a_patient_read_no_tumour_by_a_doctor_is_not_shown_the_softwares_outline(world, api, scan):
    assert api(world.colleague).post(review_url(scan), {"label": "notumor"}, format="json").status_code == 201
    mine = api(world.owner).get(f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/").json()
    assert mine["label"] == "notumor" and mine["result"]["mask_url"] is None
    # Nor the size and place of the tumour the doctor says is not there.
    measures = ("tumour_area_px", "tumour_area_mm2", "tumour_volume_mm3", "bbox")
    assert [mine["result"][name] for name in measures] == [None] * 4
    assert api(world.owner).get(f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/mask.png").status_code == 404
    # Staff still see what the software drew, beside the doctor's reading.
    staff = api(world.colleague).get(f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/").json()
    assert staff["result"]["mask_url"] and staff["result"]["tumour_area_px"] and staff["result"]["bbox"]
    assert api(world.colleague).get(staff["result"]["mask_url"]).status_code == 200
    # A later reading of a tumour brings the outline back for the patient.
    api(world.doctor_a2).post(review_url(scan), {"label": "glioma"}, format="json")
    assert api(world.owner).get(f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/mask.png").status_code == 200


@pytest.mark.parametrize("outline", ["erased", "redrawn"])
def test_a_patient_is_not_given_the_softwares_size_of_an_outline_a_doctor_replaced(world, api, scan, outline):
    drawn = mask_png() if outline == "redrawn" else _empty_png()
    assert api(world.colleague).post(review_url(scan), {"label": "glioma", "mask": SimpleUploadedFile("m.png", drawn)},
                                     format="multipart").status_code == 201
    measures = ("tumour_area_px", "tumour_area_mm2", "tumour_volume_mm3", "bbox")
    mine = api(world.owner).get(f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/").json()
    assert [mine["result"][name] for name in measures] == [None] * 4
    assert (mine["result"]["mask_url"] is not None) == (outline == "redrawn")  # the doctor's outline, if drawn
    # Staff read them as the software's, beside the doctor's outline.
    staff = api(world.colleague).get(f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/").json()
    assert staff["result"]["tumour_area_px"] and staff["result"]["bbox"]


def _empty_png(shape=(224, 224)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros(shape, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_patient_learns_when_a_doctor_settled_the_reading(world, api, scan):
    detail = f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/"
    assert api(world.owner).get(detail).json()["reviewed_at"] is None
    api(world.colleague).post(review_url(scan), {"label": "glioma"}, format="json")
    api(world.doctor_a2).post(review_url(scan), {"label": "meningioma"}, format="json")
    latest = Review.objects.filter(scan=scan).latest("created_at").created_at
    assert datetime.datetime.fromisoformat(api(world.owner).get(detail).json()["reviewed_at"]) == latest


def test_a_review_based_on_an_outdated_page_does_not_replace_a_colleagues_unseen(world, api, scan):
    """Two doctors open the case; the first saves a corrected outline; the second, still looking at the
    model's, must not silently replace it: the latest review decides what the patient is shown."""
    first = api(world.doctor_a2).post(
        review_url(scan), {"label": "meningioma", "last_review_seen": "", "mask": SimpleUploadedFile("m.png", mask_png())},
        format="multipart")
    assert first.status_code == 201, first.content
    stale = api(world.colleague).post(review_url(scan), {"label": "glioma", "last_review_seen": ""}, format="json")
    assert stale.status_code == 409 and stale.json()["error"] == "review_conflict"
    scan.refresh_from_db()
    assert scan.reviewed_label == "meningioma" and Review.objects.filter(scan=scan).count() == 1
    assert len(stored_files()) == 4  # the scan, its mask and heatmap, the first doctor's outline; no orphan

    seen = first.json()["reviews"][-1]["id"]
    current = api(world.colleague).post(review_url(scan), {"label": "glioma", "last_review_seen": seen}, format="json")
    assert current.status_code == 201, current.content
    assert current.json()["reviewed_label"] == "glioma" and Review.objects.filter(scan=scan).count() == 2


def test_an_outline_drawn_over_one_a_colleague_has_replaced_is_refused(world, api, scan):
    """The second doctor read the colleague's review (so last_review_seen is current) but kept drawing over
    the software's outline, which theirs replaced: that mask must not undo the colleague's outline."""
    first = api(world.doctor_a2).post(
        review_url(scan), {"label": "glioma", "last_review_seen": "", "outline_based_on": "",
                           "mask": SimpleUploadedFile("m.png", mask_png())}, format="multipart")
    assert first.status_code == 201, first.content
    theirs = first.json()["reviews"][-1]["id"]
    over_the_softwares = api(world.colleague).post(
        review_url(scan), {"label": "glioma", "last_review_seen": theirs, "outline_based_on": "",
                           "mask": SimpleUploadedFile("m.png", mask_png())}, format="multipart")
    assert over_the_softwares.status_code == 409 and over_the_softwares.json()["error"] == "outline_conflict"
    assert "load their outline" in over_the_softwares.json()["detail"]
    assert Review.objects.filter(scan=scan).count() == 1
    assert len(stored_files()) == 4  # the refused outline left no file
    # A label alone changes no outline; a correction of the standing outline is taken.
    assert api(world.colleague).post(review_url(scan), {"label": "meningioma", "last_review_seen": theirs,
                                                        "outline_based_on": ""}, format="json").status_code == 201
    seen = Review.objects.filter(scan=scan).latest("created_at").id
    over_theirs = api(world.colleague).post(
        review_url(scan), {"label": "glioma", "last_review_seen": str(seen), "outline_based_on": theirs,
                           "mask": SimpleUploadedFile("m.png", mask_png())}, format="multipart")
    assert over_theirs.status_code == 201, over_theirs.content
    assert over_theirs.json()["reviews"][-1]["mask_changed"]


def test_a_review_answers_even_when_the_scan_is_removed_before_the_answer(world, api, scan, monkeypatch):
    from diagnostics import services
    from hospitals.models import Membership

    review_scan = services.review_scan

    def reviewed_then_removed(**kwargs):
        review = review_scan(**kwargs)
        services.remove_scan(hospital=world.a, scan=Scan.objects.get(pk=scan.pk), reason="wrong patient",
                             membership=Membership.objects.get(user=world.admin_a, hospital=world.a))
        return review

    monkeypatch.setattr(services, "review_scan", reviewed_then_removed)
    response = api(world.colleague).post(review_url(scan), {"label": "meningioma"}, format="json")
    # The review was taken; what the answer shows is the scan as it left it.
    assert response.status_code == 201 and response.json()["reviewed_label"] == "meningioma"
    assert not Scan.objects.filter(pk=scan.pk).exists()


def test_a_review_too_large_to_take_is_refused_not_stored_without_its_outline(world, api, scan, settings):
    """A body over the limit is never read into memory: its outline would be dropped unseen and the review
    stored without it, as if the doctor had left the software's outline alone."""
    settings.UPLOAD_MAX_BYTES = 1000
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = settings.UPLOAD_MAX_BYTES + 64 * 1024  # as settings.py derives it
    padded = io.BytesIO()
    info = PngImagePlugin.PngInfo()
    info.add_text("padding", "x" * 80_000)
    Image.open(io.BytesIO(mask_png())).save(padded, format="PNG", pnginfo=info)
    response = api(world.colleague).post(
        review_url(scan), {"label": "meningioma", "mask": SimpleUploadedFile("m.png", padded.getvalue())},
        format="multipart")
    assert response.status_code == 413 and response.json()["error"] == "too_large"
    assert not Review.objects.exists() and len(stored_files()) == 3
