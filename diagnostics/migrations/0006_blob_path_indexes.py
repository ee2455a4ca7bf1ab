from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """Built concurrently on PostgreSQL; the embedded demo's SQLite has no such build, and no traffic to
    block, so it gets a plain CREATE INDEX."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    # Built concurrently: a plain CREATE INDEX would block every upload and review while it reads the
    # tables, and these are the largest a deployment holds.
    atomic = False

    dependencies = [
        ("diagnostics", "0005_record_doctor_outlines"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="scan", index=models.Index(fields=["blob_path"], name="scan_blob_path_idx"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="diagnosis", index=models.Index(fields=["mask_path"], name="diagnosis_mask_path_idx"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="diagnosis", index=models.Index(fields=["heatmap_path"], name="diagnosis_heatmap_path_idx"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="review", index=models.Index(fields=["mask_path"], name="review_mask_path_idx"),
        ),
    ]
