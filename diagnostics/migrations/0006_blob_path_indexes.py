from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built concurrently: a plain CREATE INDEX would block every upload and review while it reads the
    # tables, and these are the largest a deployment holds.
    atomic = False

    dependencies = [
        ("diagnostics", "0005_record_doctor_outlines"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="scan", index=models.Index(fields=["blob_path"], name="scan_blob_path_idx"),
        ),
        AddIndexConcurrently(
            model_name="diagnosis", index=models.Index(fields=["mask_path"], name="diagnosis_mask_path_idx"),
        ),
        AddIndexConcurrently(
            model_name="diagnosis", index=models.Index(fields=["heatmap_path"], name="diagnosis_heatmap_path_idx"),
        ),
        AddIndexConcurrently(
            model_name="review", index=models.Index(fields=["mask_path"], name="review_mask_path_idx"),
        ),
    ]
