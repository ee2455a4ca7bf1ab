import io

import numpy as np
from django.db import migrations

# Which scans' standing outline correction (the latest review that stored one) has a pixel. Until now
# that was known only by decrypting the outline, so a tumour whose outline a doctor erased counted as
# an outlined case. Each latest correction is read once, with its hospital's key.
#
# Apart from 0004, which adds the column: in one migration the ALTER TABLE's exclusive lock would be held
# while every outline is decrypted, and every read of the scans table would wait for it. Here only the
# rows updated are locked, and a rerun gives the same answer.
REVIEW_MASK_BLOB = "review_mask"  # diagnostics.services.REVIEW_MASK_BLOB when this was written


def _drawn(hospital, review) -> bool:
    from django.core.exceptions import ImproperlyConfigured
    from PIL import Image

    from hospitals.crypto import DecryptionError
    from hospitals.storage import read_blob

    try:
        png = read_blob(hospital, review.mask_path, record_type=REVIEW_MASK_BLOB, record_id=review.id,
                        sha256=review.mask_sha256)
        return bool((np.asarray(Image.open(io.BytesIO(png)).convert("L")) > 0).any())
    except (DecryptionError, ImproperlyConfigured, OSError, ValueError):
        # Missing, or under a key no longer at hand: as it counted until now. A node cannot read it either,
        # and fails its run saying so, which is where a broken file is best found.
        return True


def record_doctor_outlines(apps, schema_editor):
    Review = apps.get_model("diagnostics", "Review")
    Scan = apps.get_model("diagnostics", "Scan")
    Hospital = apps.get_model("hospitals", "Hospital")
    latest = {}
    for review in Review.objects.filter(mask_changed=True).order_by("created_at").iterator():
        latest[review.scan_id] = review
    hospitals = {}
    for scan_id, review in latest.items():
        if review.hospital_id not in hospitals:
            hospitals[review.hospital_id] = Hospital.objects.get(pk=review.hospital_id)
        outline = "drawn" if _drawn(hospitals[review.hospital_id], review) else "empty"
        Scan.objects.filter(pk=scan_id).update(doctor_outline=outline)


class Migration(migrations.Migration):

    dependencies = [
        ("diagnostics", "0004_scan_doctor_outline"),
    ]

    operations = [
        migrations.RunPython(record_doctor_outlines, migrations.RunPython.noop),
    ]
