"""Deleting a hospital crypto-shreds it: the data key goes first, then its rows and its files."""

import contextlib
import io
import logging
import os
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from hospitals import crypto, keys, storage
from hospitals.models import AuditEvent, Hospital, Invitation, Membership, Patient, Role
from hospitals.services import delete_hospital, invite_member
from tests.factories import add_reviewed_case

pytestmark = pytest.mark.django_db


def test_delete_hospital_destroys_key_rows_and_files(world, django_capture_on_commit_callbacks):
    stored = storage.store_blob(world.a, b"\x89PNG scan", record_type="scan", record_id=1)
    invite_member(hospital=world.a, email="x@example.org", role=Role.DOCTOR, actor=world.admin_a)
    sealed = (Path(settings.MEDIA_ROOT) / stored.path).read_bytes()
    data_key = keys.hospital_data_key(world.a)
    hospital_id = world.a.pk

    with django_capture_on_commit_callbacks(execute=True):
        delete_hospital(hospital=world.a, actor=None)

    assert not Hospital.objects.filter(pk=hospital_id).exists()
    for model in (Membership, Patient, Invitation):
        assert not model.objects.filter(hospital_id=hospital_id).exists()
    assert not storage.hospital_root(world.a).exists()
    # The other hospital is untouched.
    assert Membership.objects.filter(hospital=world.b).count() == 3
    assert keys.hospital_data_key(Hospital.objects.get(pk=world.b.pk))
    # The trail outlives the hospital, and says it was deleted.
    assert AuditEvent.objects.filter(hospital_id=hospital_id, action="hospital.delete").exists()
    # A copy of a blob taken before deletion is only readable with the key, which no longer exists anywhere.
    aad = crypto.blob_associated_data(str(hospital_id), "scan", "1")
    assert crypto.decrypt_blob(data_key, sealed, aad) == b"\x89PNG scan"


def test_key_is_overwritten_before_the_row_goes(world):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        delete_hospital(hospital=world.a)
    statements = [q["sql"] for q in queries.captured_queries if '"hospitals_hospital"' in q["sql"]]
    overwrite = next(i for i, sql in enumerate(statements) if sql.startswith("UPDATE") and "wrapped_data_key" in sql)
    delete = next(i for i, sql in enumerate(statements) if sql.startswith("DELETE"))
    # The row's last version carries random bytes, not the wrapped key (its earlier versions keep it until
    # vacuum, wrapped by the master key: docs/foundation.md).
    assert overwrite < delete


def test_command_needs_the_slug_repeated(world):
    add_reviewed_case(world.a)  # an imported training case: a scan of no patient record
    with pytest.raises(CommandError, match=r"This destroys st-anne's data key, 5 memberships, 2 patient records and "
                                           r"1 scan with every stored file.*--yes-destroy-all-data st-anne"):
        call_command("delete_hospital", "st-anne", stdout=io.StringIO())
    with pytest.raises(CommandError, match="--yes-destroy-all-data st-anne"):
        call_command("delete_hospital", "st-anne", "--yes-destroy-all-data", "north-general", stdout=io.StringIO())
    assert Hospital.objects.filter(slug="st-anne").exists()


def test_command_deletes_with_confirmation(world, django_capture_on_commit_callbacks):
    storage.store_blob(world.a, b"x", record_type="scan", record_id=1)
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("delete_hospital", "st-anne", "--yes-destroy-all-data", "st-anne", stdout=out)
    assert "data key destroyed" in out.getvalue()
    assert not Hospital.objects.filter(slug="st-anne").exists()
    assert not storage.hospital_root(world.a).exists()


def test_unknown_slug(db):
    with pytest.raises(CommandError, match="No hospital"):
        call_command("delete_hospital", "nowhere", "--yes-destroy-all-data", "nowhere")


def test_members_lose_access_through_the_api(world, client_as):
    delete_hospital(hospital=world.a)
    from tests.hospitals.conftest import url

    assert client_as("doctor_a").get(url("hospitals", "st-anne", "patients")).status_code == 404
    assert client_as("doctor_a").get(url("hospitals")).json() == []


@contextlib.contextmanager
def undeletable(path: Path):
    """Make `path` a file that cannot be removed, as a real deployment meets one: immutable (root ignores
    folder permissions), or in a read-only folder for any other user."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.parent.chmod(0o500)
        try:
            yield
        finally:
            path.parent.chmod(0o700)


def test_files_that_cannot_be_removed_are_logged_and_counted(world, caplog, django_capture_on_commit_callbacks):
    kept = storage.store_blob(world.a, b"scan", record_type="scan", record_id=1)
    storage.store_blob(world.a, b"mask", record_type="mask", record_id=2)
    kept_file = Path(settings.MEDIA_ROOT) / kept.path
    with undeletable(kept_file), caplog.at_level(logging.WARNING, logger="hospitals.storage"):
        with django_capture_on_commit_callbacks(execute=True):
            deletion = delete_hospital(hospital=world.a)
        assert kept_file.exists()
    # The deletion stands; what is left is counted (the file, its folder, the hospital's folder) and logged.
    assert not Hospital.objects.filter(pk=world.a.pk).exists()
    assert deletion.files_left == 3
    [record] = [r for r in caplog.records if r.name == "hospitals.storage"]
    assert str(world.a.pk) in record.getMessage() and "sweep_orphan_blobs" in record.getMessage()
    assert not (storage.hospital_root(world.a) / "mask").exists()


@pytest.mark.django_db(transaction=True)
def test_command_says_how_many_files_stay_and_what_removes_them(world):
    kept = storage.store_blob(world.a, b"scan", record_type="scan", record_id=1)
    out, err = io.StringIO(), io.StringIO()
    with undeletable(Path(settings.MEDIA_ROOT) / kept.path):
        call_command("delete_hospital", "st-anne", "--yes-destroy-all-data", "st-anne", stdout=out, stderr=err)
    assert not Hospital.objects.filter(slug="st-anne").exists()
    assert "data key destroyed" in out.getvalue() and "files deleted" not in out.getvalue()
    assert "3 stored file(s) and folder(s)" in err.getvalue() and "sweep_orphan_blobs" in err.getvalue()
    # Once the cause is fixed, nothing is left to report.
    assert storage.delete_hospital_files(world.a) == 0 and not storage.hospital_root(world.a).exists()


@pytest.mark.django_db(transaction=True)
def test_command_says_files_deleted_when_they_all_went(world):
    storage.store_blob(world.a, b"scan", record_type="scan", record_id=1)
    out, err = io.StringIO(), io.StringIO()
    call_command("delete_hospital", "st-anne", "--yes-destroy-all-data", "st-anne", stdout=out, stderr=err)
    assert "files deleted" in out.getvalue() and err.getvalue() == ""
    assert not storage.hospital_root(world.a).exists()
