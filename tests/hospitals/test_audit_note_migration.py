"""Migration 0005 seals the removal reasons that were kept in the plain-text detail column."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from hospitals.audit import note_reader
from hospitals.models import AuditEvent, Hospital
from tests.factories import make_hospital

BEFORE = [("hospitals", "0004_after_review_wording")]
AFTER = [("hospitals", "0005_audit_sealed_note")]


def latest():
    """Every app's newest migration: where the database must be left for the tests after this one."""
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


@pytest.mark.django_db(transaction=True)
def test_removal_reasons_move_from_the_plain_detail_into_the_sealed_note():
    hospital = make_hospital("st-anne", "St Anne's")
    other = make_hospital("north-general", "North General")
    try:
        migrate(BEFORE)
        with connection.cursor() as cursor:
            for hospital_id, action, object_id, detail in (
                (hospital.pk, "scan.delete", "scan-1", "Uploaded for Mr Quillfeather"),
                (other.pk, "scan.delete", "scan-2", "wrong side"),
                (hospital.pk, "membership.create", "7", "doctor"),
            ):
                cursor.execute(
                    "INSERT INTO hospitals_auditevent (hospital_id, action, object_type, object_id, actor_label, "
                    "detail, at) VALUES (%s, %s, 'scan', %s, '', %s, now())",
                    [hospital_id, action, object_id, detail],
                )
        migrate(AFTER)
        removal = AuditEvent.objects.get(object_id="scan-1")
        assert removal.detail == "" and b"Quillfeather" not in bytes(removal.sealed_note)
        assert note_reader(hospital)(removal) == "Uploaded for Mr Quillfeather"
        assert note_reader(other)(AuditEvent.objects.get(object_id="scan-2")) == "wrong side"
        untouched = AuditEvent.objects.get(action="membership.create")
        assert untouched.detail == "doctor" and untouched.sealed_note is None
        # The trail is append-only again once the migration is done.
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("UPDATE hospitals_auditevent SET detail = 'forged'")

        other_id = other.pk
        other.delete()  # its key goes with it; its trail stays
        migrate(BEFORE)  # and back
        with connection.cursor() as cursor:
            cursor.execute("SELECT detail FROM hospitals_auditevent WHERE object_id = 'scan-1'")
            assert cursor.fetchone()[0] == "Uploaded for Mr Quillfeather"
            cursor.execute("SELECT detail FROM hospitals_auditevent WHERE hospital_id = %s", [other_id])
            assert cursor.fetchone() == ("",)  # shredded with the hospital, not restored
    finally:
        migrate(latest())
        assert Hospital.objects.filter(pk=hospital.pk).exists()
