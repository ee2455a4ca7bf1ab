"""`manage.py sweep_orphan_blobs` and hospitals.storage's sweep: blob files no row names, left by a process
killed between the write and the commit of its row, and folders of hospitals that no longer exist."""

import io
import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import models

from diagnostics.models.scans import Diagnosis, Review, Scan
from hospitals import storage
from tests.factories import add_reviewed_case, make_hospital

pytestmark = pytest.mark.django_db

TWO_HOURS_AGO = time.time() - 2 * 3600


def age(path: Path, when=TWO_HOURS_AGO):
    os.utime(path, (when, when))
    return path


def media(relative: str) -> Path:
    return Path(settings.MEDIA_ROOT) / relative


@pytest.fixture
def site():
    """A hospital whose every kind of blob is named by a row, beside what a killed process left."""
    hospital = make_hospital()
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[20:30, 20:30] = 1
    scan = add_reviewed_case(hospital, mask=mask)
    review = Review.objects.get(scan=scan)
    diagnosis_mask = storage.store_blob(hospital, b"mask png", record_type="mask", record_id=1)
    heatmap = storage.store_blob(hospital, b"heatmap png", record_type="heatmap", record_id=1)
    Diagnosis.objects.create(hospital=hospital, scan=scan, label="glioma", probabilities={"glioma": 1.0},
                             confidence=1.0, mask_path=diagnosis_mask.path, heatmap_path=heatmap.path)
    named = [scan.blob_path, review.mask_path, diagnosis_mask.path, heatmap.path]
    # A write whose process was killed before its row committed, one killed mid-write, and a write in flight.
    orphan = storage.store_blob(hospital, b"killed before commit", record_type="scan", record_id=2).path
    partial = media(orphan).with_name("0" * 32 + ".bin.tmp")
    partial.write_bytes(b"half")
    fresh = storage.store_blob(hospital, b"row not committed yet", record_type="scan", record_id=3).path
    for path in storage.hospital_root(hospital).rglob("*"):
        age(path)
    age(media(fresh), time.time())
    return hospital, named, orphan, partial, fresh


def gone_hospital_folder(written=TWO_HOURS_AGO):
    """The folder of a hospital whose deletion crashed before its files went."""
    root = Path(settings.MEDIA_ROOT) / "hospitals" / str(uuid.uuid4())
    (root / "scan").mkdir(parents=True)
    blob = root / "scan" / ("a" * 32 + ".bin")
    blob.write_bytes(b"sealed under a destroyed key")
    for path in (blob, root / "scan", root):
        age(path, written)
    return root


def test_every_field_naming_a_blob_is_known_to_the_sweep():
    """A new model column holding a blob path must be listed in its model's BLOB_PATH_FIELDS, or the sweep
    would delete the files it names. Paths outside MEDIA_ROOT/hospitals are the only others."""
    from django.apps import apps

    outside_hospital_folders = {("ModelVersion", "artifact_path"), ("FederatedRun", "weights_path")}
    path_columns = {(model.__name__, f.name) for model in apps.get_models() for f in model._meta.get_fields()
                    if isinstance(f, models.CharField) and f.name.endswith("_path")}
    known = {(model.__name__, name) for model, name in storage.blob_path_fields()}
    assert known == {("Scan", "blob_path"), ("Diagnosis", "mask_path"), ("Diagnosis", "heatmap_path"),
                     ("Review", "mask_path")}
    assert path_columns - outside_hospital_folders == known


def test_sweep_deletes_only_old_files_no_row_names(site):
    hospital, named, orphan, partial, fresh = site
    gone = gone_hospital_folder()
    in_creation = gone_hospital_folder(written=time.time())  # a hospital whose creation has not committed
    stranger = storage.hospital_root(hospital) / "scan" / "notes.txt"
    stranger.write_text("an administrator's file")
    age(stranger)

    report = storage.sweep_orphan_blobs(storage.find_orphan_candidates(older_than=timedelta(hours=1)))

    for path in named:
        assert media(path).is_file(), path
    assert media(fresh).is_file() and stranger.is_file()
    assert not media(orphan).exists() and not partial.exists()
    assert not gone.exists() and (in_creation / "scan").is_dir()
    assert sorted(report.orphans) == sorted([orphan, str(partial.relative_to(settings.MEDIA_ROOT)),
                                             str((gone / "scan" / ("a" * 32 + ".bin")).relative_to(settings.MEDIA_ROOT))])
    assert report.checked == len(named) + 3 and report.failed == 0
    assert report.gone_hospital_folders == 2 and report.folders_removed == 2 and report.unrecognised == 1
    # What was kept still opens.
    scan = Scan.objects.get(hospital=hospital)
    assert storage.read_blob(hospital, scan.blob_path, record_type="scan", record_id=scan.id, sha256=scan.blob_sha256)


def test_dry_run_lists_and_deletes_nothing(site):
    hospital, named, orphan, partial, fresh = site
    gone = gone_hospital_folder()
    out = io.StringIO()
    call_command("sweep_orphan_blobs", "--dry-run", stdout=out, stderr=io.StringIO())
    assert media(orphan).is_file() and partial.is_file() and gone.is_dir()
    listed = out.getvalue()
    assert orphan in listed and str(gone.name) in listed and not any(path in listed for path in named)
    assert "3 named by no row would be deleted" in listed and "1 folder(s) of hospitals that no longer exist" in listed


def test_command_sweeps_one_hospital_and_reports(site):
    hospital, named, orphan, partial, fresh = site
    other = make_hospital()
    elsewhere = storage.store_blob(other, b"orphan elsewhere", record_type="scan", record_id=9).path
    age(media(elsewhere))
    gone = gone_hospital_folder()
    out, err = io.StringIO(), io.StringIO()
    call_command("sweep_orphan_blobs", "--hospital", hospital.slug, stdout=out, stderr=err)
    assert not media(orphan).exists() and not partial.exists() and media(fresh).is_file()
    assert all(media(path).is_file() for path in named)
    # Another hospital's folder and a gone hospital's are not this run's.
    assert media(elsewhere).is_file() and gone.is_dir()
    assert f"6 file(s) older than 60 min checked in {hospital.slug}'s folder: 2 named by no row deleted" in out.getvalue()
    assert "4 kept" in out.getvalue()
    assert "Checking" in err.getvalue()  # the progress bar


def test_command_refuses_a_cutoff_that_could_reach_a_write_in_flight_and_an_unknown_hospital(db):
    with pytest.raises(CommandError, match="at least 10 minutes"):
        call_command("sweep_orphan_blobs", "--older-than", "1", stdout=io.StringIO())
    with pytest.raises(CommandError, match="No hospital"):
        call_command("sweep_orphan_blobs", "--hospital", "nowhere", stdout=io.StringIO())


def test_nothing_stored_yet(db):
    out = io.StringIO()
    call_command("sweep_orphan_blobs", stdout=out, stderr=io.StringIO())
    assert "0 file(s) older than 60 min checked" in out.getvalue()



def test_from_cron_at_verbosity_0_a_sweep_that_removes_nothing_prints_nothing(db):
    """cron mails whatever a job prints: a daily sweep that found nothing must print nothing, bar included."""
    hospital = make_hospital()
    add_reviewed_case(hospital)
    for path in storage.hospital_root(hospital).rglob("*"):
        age(path)
    out, err = io.StringIO(), io.StringIO()
    call_command("sweep_orphan_blobs", verbosity=0, stdout=out, stderr=err)
    assert (out.getvalue(), err.getvalue()) == ("", "")


def test_from_cron_at_verbosity_0_a_sweep_that_removed_files_prints_only_its_summary(site):
    hospital, named, orphan, partial, fresh = site
    out, err = io.StringIO(), io.StringIO()
    call_command("sweep_orphan_blobs", "--hospital", hospital.slug, verbosity=0, stdout=out, stderr=err)
    assert not media(orphan).exists()
    [summary] = out.getvalue().splitlines()
    assert summary.startswith(f"6 file(s) older than 60 min checked in {hospital.slug}'s folder: 2 named by no "
                              "row deleted (") and summary.endswith("4 kept.")
    assert err.getvalue() == ""


@pytest.mark.parametrize("option", ["--older-than-min", "--older-than"])
def test_the_cutoff_is_older_than_min_as_in_the_other_commands_and_older_than_still_works(site, option):
    hospital, named, orphan, partial, fresh = site
    out = io.StringIO()
    call_command("sweep_orphan_blobs", option, "180", stdout=out, stderr=io.StringIO())
    assert "0 file(s) older than 180 min checked" in out.getvalue() and media(orphan).is_file()
    call_command("sweep_orphan_blobs", option, "90", stdout=out, stderr=io.StringIO())
    assert "older than 90 min checked" in out.getvalue() and not media(orphan).exists()
    with pytest.raises(CommandError, match="--older-than-min must be at least 10 minutes"):
        call_command("sweep_orphan_blobs", option, "9", stdout=io.StringIO())

@pytest.mark.django_db
def test_every_field_naming_a_blob_leads_an_index():
    """The sweep asks the rows about every old file, and the clean-up after a failed write about one: each
    lookup by path must not read the whole table."""
    from django.db import connection

    with connection.cursor() as cursor:
        for model, name in storage.blob_path_fields():
            column = model._meta.get_field(name).column
            constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
            assert any(c["index"] and c["columns"][:1] == [column] for c in constraints.values()), (model, name)
