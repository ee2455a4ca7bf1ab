"""Master-key rotation: data keys are rewrapped, blobs stay as they are and stay readable."""

import base64
import io
import secrets
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from hospitals import crypto, keys, storage
from hospitals.models import AuditEvent, Hospital
from tests.factories import make_hospital, make_patient
from tests.hospitals.conftest import new_key

pytestmark = pytest.mark.django_db


def rotate():
    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_master_key", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def store_some(hospital, n=3):
    blobs = {}
    for i in range(n):
        plaintext = secrets.token_bytes(64) + b"\x89PNG-like"
        blobs[i] = (storage.store_blob(hospital, plaintext, record_type="scan", record_id=i), plaintext)
    return blobs


def assert_readable(hospital, blobs):
    hospital = Hospital.objects.get(pk=hospital.pk)
    for i, (stored, plaintext) in blobs.items():
        assert storage.read_blob(hospital, stored.path, record_type="scan", record_id=i, sha256=stored.sha256) == plaintext


def test_at_verbosity_0_rotation_shows_no_progress_bar(master):
    old, new = new_key(), new_key()
    master(old)
    make_hospital()
    master(new, previous=old)
    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_master_key", verbosity=0, stdout=out, stderr=err)
    assert "1 hospital key(s) rewrapped" in out.getvalue() and err.getvalue() == ""


def test_rotation_rewraps_every_hospital_and_leaves_blobs_untouched(master):
    old, new = new_key(), new_key()
    master(old)
    hospitals = [make_hospital() for _ in range(3)]
    blobs = {h.pk: store_some(h) for h in hospitals}
    patient = make_patient(hospitals[0], medical_record_number="MRN-1")
    files_before = {p: p.read_bytes() for p in Path(settings.MEDIA_ROOT).rglob("*.bin")}

    master(new, previous=old)
    out, err = rotate()
    assert "3 hospital key(s) rewrapped" in out
    assert "3/3" in err  # the progress bar reached the end
    new_id = crypto.key_id(base64.b64decode(new))
    assert set(Hospital.objects.values_list("master_key_id", flat=True)) == {new_id}
    assert AuditEvent.objects.filter(action="hospital.key_rewrap").count() == 3

    master(new)  # the old key is retired
    for h in hospitals:
        assert_readable(h, blobs[h.pk])
    assert {p: p.read_bytes() for p in Path(settings.MEDIA_ROOT).rglob("*.bin")} == files_before
    # The data key itself did not change, so MRN lookups made before rotation still match.
    assert keys.mrn_digest(Hospital.objects.get(pk=hospitals[0].pk), "MRN-1") == patient.mrn_digest


def test_rotation_is_idempotent(master):
    old, new = new_key(), new_key()
    master(old)
    make_hospital()
    master(new, previous=old)
    rotate()
    wrapped = list(Hospital.objects.values_list("wrapped_data_key", flat=True))
    out, _ = rotate()
    assert "0 hospital key(s) rewrapped, 1 already under" in out
    assert list(Hospital.objects.values_list("wrapped_data_key", flat=True)) == wrapped


def test_rotation_keeps_what_it_did_when_a_hospital_fails(master):
    unknown, old, new = new_key(), new_key(), new_key()
    master(old)
    first = make_hospital("a-first")
    blobs = store_some(first)
    master(unknown)
    make_hospital("b-second")  # wrapped under a key the rotation will not be given
    master(new, previous=old)
    with pytest.raises(CommandError, match="not configured"):
        rotate()
    by_slug = dict(Hospital.objects.values_list("slug", "master_key_id"))
    assert by_slug == {"a-first": crypto.key_id(base64.b64decode(new)), "b-second": crypto.key_id(base64.b64decode(unknown))}
    master(new)
    assert_readable(first, blobs)
    # Given the missing key, a rerun finishes the job.
    master(new, previous=unknown)
    out, _ = rotate()
    assert "1 hospital key(s) rewrapped, 1 already under" in out


def test_previous_key_can_come_from_a_file(master, settings, tmp_path):
    old, new = new_key(), new_key()
    master(old)
    hospital = make_hospital()
    blobs = store_some(hospital, 1)
    (tmp_path / "old.key").write_text(old + "\n")
    master(new)
    settings.PREVIOUS_MASTER_KEY_FILE = str(tmp_path / "old.key")
    rotate()
    master(new)
    assert_readable(hospital, blobs)


def test_without_the_old_key_nothing_opens_and_the_error_says_what_to_do(master):
    old = new_key()
    master(old)
    hospital = make_hospital()
    stored = storage.store_blob(hospital, b"x", record_type="scan", record_id=1)
    master(new_key())
    with pytest.raises(Exception, match="NEUROFED_PREVIOUS_MASTER_KEY"):
        storage.read_blob(Hospital.objects.get(pk=hospital.pk), stored.path, record_type="scan", record_id=1)


def test_a_malformed_master_key_is_refused(master):
    master("not base64!")
    with pytest.raises(CommandError, match="base64"):
        rotate()
