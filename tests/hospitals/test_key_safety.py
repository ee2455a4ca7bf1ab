"""Keys and blobs under the conditions an operator or a crash brings: a key file of the wrong kind,
a rename that must outlive a power cut, a hospital made mid-rotation by a process on the old key."""

import base64
import io
import os
import secrets
import stat

import pytest
from django.core.management import CommandError, call_command

from hospitals import crypto, storage
from hospitals.models import Hospital
from tests.factories import make_hospital
from tests.hospitals.conftest import new_key

pytestmark = pytest.mark.django_db


def test_a_raw_binary_key_file_is_refused_clearly_without_showing_its_bytes(settings, tmp_path):
    """`head -c 32 /dev/urandom > master.key` is an easy mistake; the error must say what is wrong, as
    the configuration error every caller handles, and must not print a byte of the key."""
    raw = bytes([0xBB]) + secrets.token_bytes(31)
    key_file = tmp_path / "master.key"
    key_file.write_bytes(raw)
    settings.MASTER_KEY, settings.MASTER_KEY_FILE = "", str(key_file)
    with pytest.raises(CommandError) as caught:
        call_command("rotate_master_key", stdout=io.StringIO(), stderr=io.StringIO())
    message = str(caught.value)
    assert "NEUROFED_MASTER_KEY_FILE" in message and "base64" in message
    assert "0xbb" not in message.lower()
    # Nor anywhere in the chain a log handler would print.
    cause = caught.value
    while cause is not None:
        assert "0xbb" not in str(cause).lower(), cause
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)


def test_an_unreadable_key_file_is_a_configuration_error(settings, tmp_path):
    settings.MASTER_KEY, settings.MASTER_KEY_FILE = "", str(tmp_path)  # a folder, not a file
    with pytest.raises(CommandError, match="NEUROFED_MASTER_KEY_FILE"):
        call_command("rotate_master_key", stdout=io.StringIO(), stderr=io.StringIO())


def test_a_stored_blob_survives_a_power_cut(monkeypatch):
    """The rename that puts a blob under its name is durable only once its folder is synced; the row
    that names it commits right after, so a power cut could otherwise keep the row and lose the file.
    Folders made for the blob are synced into their parents too."""
    hospital = make_hospital()
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        info = os.fstat(fd)
        synced.append((info.st_dev, info.st_ino))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    stored = storage.store_blob(hospital, b"scan", record_type="scan", record_id="1")

    def identity(path):
        info = os.stat(path)
        return info.st_dev, info.st_ino

    from django.conf import settings

    blob = settings.MEDIA_ROOT / stored.path
    assert identity(blob) in synced
    # The blob's folder, and each folder this first blob of the hospital created.
    for folder in (blob.parent, blob.parent.parent, blob.parent.parent.parent):
        assert stat.S_ISDIR(os.stat(folder).st_mode)
        assert identity(folder) in synced, folder


def test_a_hospital_made_under_the_old_key_during_a_rotation_is_not_reported_done(master, monkeypatch):
    """A web process not yet restarted with the new key can create a hospital while the rotation runs.
    The command must not then report success: the next step, dropping the old key, would make that
    hospital's data unreadable. It names the hospital and says to rerun."""
    import hospitals.management.commands.rotate_master_key as command

    old, new = new_key(), new_key()
    master(old)
    make_hospital("a-first")
    master(new, previous=old)
    real = command.rotate_master_key

    def rotation_while_a_stale_process_creates_a_hospital(**kwargs):
        report = real(**kwargs)
        master(old)  # the stale process has only the old key
        make_hospital("z-made-meanwhile")
        master(new, previous=old)
        return report

    monkeypatch.setattr(command, "rotate_master_key", rotation_while_a_stale_process_creates_a_hospital)
    with pytest.raises(CommandError, match="z-made-meanwhile") as caught:
        call_command("rotate_master_key", stdout=io.StringIO(), stderr=io.StringIO())
    assert "NEUROFED_PREVIOUS_MASTER_KEY" in str(caught.value)
    # The rerun the error asks for finishes the job.
    monkeypatch.setattr(command, "rotate_master_key", real)
    out = io.StringIO()
    call_command("rotate_master_key", stdout=out, stderr=io.StringIO())
    assert "1 hospital key(s) rewrapped, 1 already under" in out.getvalue()
    new_id = crypto.key_id(base64.b64decode(new))
    assert set(Hospital.objects.values_list("master_key_id", flat=True)) == {new_id}


def test_a_hospital_deleted_while_the_rotation_runs_does_not_stop_it(master):
    """The rotation lists the hospitals first and takes them one by one; one deleted in between is
    simply no longer there to rewrap, and the others are still done."""
    from hospitals.services import delete_hospital, rotate_master_key

    old, new = new_key(), new_key()
    master(old)
    make_hospital("a-first")
    make_hospital("b-deleted")
    make_hospital("c-last")
    master(new, previous=old)

    def delete_b_after_a(hospital):
        if hospital.slug == "a-first":
            delete_hospital(hospital=Hospital.objects.get(slug="b-deleted"))

    report = rotate_master_key(progress=delete_b_after_a)
    assert report.rewrapped == 2
    new_id = crypto.key_id(base64.b64decode(new))
    assert dict(Hospital.objects.values_list("slug", "master_key_id")) == {"a-first": new_id, "c-last": new_id}


def test_a_rotation_to_the_same_key_is_refused(master):
    """Previous and current the same key (the new one not yet set in NEUROFED_MASTER_KEY) would rewrap
    nothing and still end in success; a rotation is often made because a key leaked, which would then
    still be in use."""
    old = new_key()
    master(old)
    hospital = make_hospital()
    master(old, previous=old)
    with pytest.raises(CommandError, match="same key"):
        call_command("rotate_master_key", stdout=io.StringIO(), stderr=io.StringIO())
    assert Hospital.objects.get(pk=hospital.pk).master_key_id == hospital.master_key_id
