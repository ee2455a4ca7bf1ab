"""A blob is removed when the write that stored it fails, never once its row has committed.

An interrupt can arrive after the commit, while the on-commit follow-ups run (queueing the analysis,
mailing the patient): a web worker's timeout raises SystemExit there, Ctrl-C a KeyboardInterrupt. The
clean-up that catches it must leave the file of the scan or review that was stored.
"""

import io

import numpy as np
import pytest
from PIL import Image

from diagnostics import patient_mail, services
from diagnostics.models.scans import Review, Scan
from hospitals.storage import read_blob
from tests.diagnostics import samples
from tests.diagnostics.helpers import finish, patient_of, stored_files

# Committed for real: the on-commit follow-ups run when upload_scan's own transaction ends.
pytestmark = pytest.mark.django_db(transaction=True)


def interrupted_after(func, exception):
    def run(*args, **kwargs):
        func(*args, **kwargs)
        raise exception

    return run


def test_an_interrupt_while_the_analysis_is_queued_keeps_the_stored_upload(world, monkeypatch):
    monkeypatch.setattr(services, "enqueue_analysis", interrupted_after(services.enqueue_analysis, SystemExit(1)))
    data = samples.dicom_bytes()
    with pytest.raises(SystemExit):
        services.upload_scan(hospital=world.a, patient=patient_of(world.owner, world.a), data=data)
    scan = Scan.objects.get(hospital=world.a)
    assert read_blob(world.a, scan.blob_path, record_type=services.SCAN_BLOB, record_id=scan.id,
                     sha256=scan.blob_sha256) == data


def test_an_interrupt_while_the_patient_is_mailed_keeps_the_doctors_outline(world, monkeypatch):
    scan, _ = services.upload_scan(hospital=world.a, patient=patient_of(world.owner, world.a),
                                   data=samples.dicom_bytes())
    finish(scan)
    scan.refresh_from_db()
    buffer = io.BytesIO()
    Image.fromarray(np.full((scan.height, scan.width), 255, np.uint8)).save(buffer, format="PNG")
    monkeypatch.setattr(patient_mail, "tell_patient_scan_reviewed",
                        interrupted_after(patient_mail.tell_patient_scan_reviewed, KeyboardInterrupt()))
    files_before = set(stored_files())
    with pytest.raises(KeyboardInterrupt):
        services.review_scan(hospital=world.a, scan=scan, reviewer=world.doctor_a, label="glioma",
                             mask_png=buffer.getvalue())
    review = Review.objects.get(scan=scan)
    assert review.mask_path and set(stored_files()) - files_before
    read_blob(world.a, review.mask_path, record_type=services.REVIEW_MASK_BLOB, record_id=review.id,
              sha256=review.mask_sha256)


def test_a_write_that_fails_before_the_commit_still_leaves_no_file(world, monkeypatch):
    def refuse(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(services, "record_audit", refuse)
    with pytest.raises(KeyboardInterrupt):
        services.upload_scan(hospital=world.a, patient=patient_of(world.owner, world.a), data=samples.dicom_bytes())
    assert not Scan.objects.exists() and stored_files() == []
