"""Stored blobs' digests are keyed per hospital (hospitals.storage.plaintext_digest), and migration 0008
converts the plain SHA-256 digests earlier releases kept, without decrypting a blob."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from diagnostics.models.scans import Diagnosis, Review, Scan
from hospitals import crypto, storage
from tests.diagnostics import samples
from tests.diagnostics.helpers import finish, upload

BEFORE = [("diagnostics", "0007_diagnosis_slice_digest")]
AFTER = [("diagnostics", "0008_keyed_blob_digests")]
COLUMNS = ((Scan, "blob", "scan"), (Diagnosis, "mask", "mask"), (Diagnosis, "heatmap", "heatmap"),
           (Review, "mask", "review_mask"))


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def plaintext(row, name, record_type):
    return storage.read_blob(row.hospital, getattr(row, f"{name}_path"), record_type=record_type, record_id=row.id)


def stored_digests():
    """{(model, column, row id): (hospital, digest kept, plaintext)} of every stored blob."""
    kept = {}
    for model, name, record_type in COLUMNS:
        # Only the columns it reads: the schema may be a migration's older one, without later columns.
        rows = model.objects.select_related("hospital").only("id", "hospital", f"{name}_path", f"{name}_sha256")
        for row in rows.exclude(**{f"{name}_path": ""}):
            kept[(model, name, row.pk)] = (row.hospital, getattr(row, f"{name}_sha256"), plaintext(row, name, record_type))
    return kept


def scan_digest(scan) -> str:
    return Scan.objects.filter(pk=scan.pk).values_list("blob_sha256", flat=True).get()


@pytest.mark.django_db(transaction=True)
def test_one_file_in_two_hospitals_leaves_no_common_digest_and_old_plain_digests_are_converted(world, api):
    from diagnostics import services

    data = samples.jpeg_bytes("glioma", 2)
    scans = []
    for hospital, patient in ((world.a, world.patient_a), (world.b, world.patient_b)):
        scan = Scan.objects.get(pk=upload(api(patient), hospital, data).json()["id"])
        finish(scan, "glioma", 0.9)
        scans.append(scan)
    services.review_scan(hospital=world.a, scan=scans[0], reviewer=world.doctor_a, label="meningioma",
                         mask_png=samples.array_png(samples.slice_array("glioma", 0) > 128))
    a, b = (Scan.objects.get(pk=scan.pk) for scan in scans)
    assert a.blob_sha256 != b.blob_sha256 and crypto.sha256_hex(data) not in (a.blob_sha256, b.blob_sha256)
    assert a.blob_sha256 == storage.plaintext_digest(world.a, data)
    try:
        migrate(BEFORE)
        # As an earlier release stored them: the plaintexts' plain SHA-256.
        for (model, name, pk), (_hospital, _digest, content) in stored_digests().items():
            model.objects.filter(pk=pk).update(**{f"{name}_sha256": crypto.sha256_hex(content)})
        assert scan_digest(a) == scan_digest(b)
        # Until converted, a plain digest still checks what its blob decrypts to.
        assert storage.read_blob(world.a, a.blob_path, record_type="scan", record_id=a.id,
                                 sha256=crypto.sha256_hex(data)) == data
        migrate(AFTER)
        converted = stored_digests()
        assert len(converted) == 2 + 2 * 2 + 1  # two scans, their masks and heatmaps, one review's mask
        for hospital, digest, content in converted.values():
            assert digest == storage.plaintext_digest(hospital, content) != crypto.sha256_hex(content)
        assert scan_digest(a) != scan_digest(b)
        with pytest.raises(storage.BlobIntegrityError):
            storage.read_blob(world.a, a.blob_path, record_type="scan", record_id=a.id,
                              sha256=storage.plaintext_digest(world.b, data))
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
