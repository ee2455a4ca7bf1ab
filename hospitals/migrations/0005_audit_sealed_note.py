from django.db import migrations, models

# Until now a scan removal's reason, which an admin types and which may name a patient, was kept in the
# plain-text `detail` column. It moves into `sealed_note`, under its hospital's data key. The trail is
# append-only, in the database too (0002), so its trigger is lifted for this one rewrite, by the
# schema's owner, inside the migration's transaction.
REMOVAL = "scan.delete"
TRIGGER = "hospitals_auditevent_append_only"


def _rewrite_trail(schema_editor, rewrite):
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        schema_editor.execute(f"ALTER TABLE hospitals_auditevent DISABLE TRIGGER {TRIGGER}")
    rewrite()
    if postgres:
        schema_editor.execute(f"ALTER TABLE hospitals_auditevent ENABLE TRIGGER {TRIGGER}")


def seal_removal_reasons(apps, schema_editor):
    from hospitals.audit import seal_note
    from hospitals.keys import hospital_data_key

    AuditEvent = apps.get_model("hospitals", "AuditEvent")
    Hospital = apps.get_model("hospitals", "Hospital")
    events = AuditEvent.objects.filter(action=REMOVAL).exclude(detail="")

    def rewrite():
        keys = {}
        for event in events.iterator():
            if event.hospital_id not in keys:
                hospital = Hospital.objects.filter(pk=event.hospital_id).first()
                # A deleted hospital's key is destroyed: its reasons are shredded with its scans.
                keys[event.hospital_id] = hospital_data_key(hospital) if hospital and hospital.wrapped_data_key else None
            key = keys[event.hospital_id]
            sealed = seal_note(key, event.hospital_id, event.action, event.object_type, event.object_id,
                               event.detail) if key else None
            AuditEvent.objects.filter(pk=event.pk).update(sealed_note=sealed, detail="")

    _rewrite_trail(schema_editor, rewrite)


def unseal_removal_reasons(apps, schema_editor):
    from hospitals import crypto
    from hospitals.audit import _note_associated_data
    from hospitals.keys import hospital_data_key

    AuditEvent = apps.get_model("hospitals", "AuditEvent")
    Hospital = apps.get_model("hospitals", "Hospital")

    def rewrite():
        for event in AuditEvent.objects.filter(action=REMOVAL, sealed_note__isnull=False).iterator():
            hospital = Hospital.objects.filter(pk=event.hospital_id).first()
            if hospital is None or not hospital.wrapped_data_key:
                # Deleted since: its key, and with it the note, is destroyed.
                AuditEvent.objects.filter(pk=event.pk).update(sealed_note=None)
                continue
            note = crypto.decrypt_blob(hospital_data_key(hospital), bytes(event.sealed_note), _note_associated_data(
                event.hospital_id, event.action, event.object_type, event.object_id)).decode()
            AuditEvent.objects.filter(pk=event.pk).update(detail=note[:200], sealed_note=None)

    _rewrite_trail(schema_editor, rewrite)


class Migration(migrations.Migration):

    dependencies = [
        ("hospitals", "0004_after_review_wording"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="sealed_note",
            field=models.BinaryField(blank=True, null=True),
        ),
        migrations.RunPython(seal_removal_reasons, unseal_removal_reasons),
    ]
