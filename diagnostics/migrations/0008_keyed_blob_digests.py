"""The digests kept beside stored blobs become keyed per hospital (hospitals.storage.plaintext_digest).

Earlier releases kept a plain SHA-256 of each scan, mask and heatmap, which showed a database reader
that two hospitals hold the same file. The keyed digest is an HMAC over that same SHA-256, so each row
converts without decrypting its blob. A hospital whose master key is not configured while this runs
keeps its plain digests, which reads still accept; nothing can be read from it until its key is back.
"""

import logging

from django.core.exceptions import ImproperlyConfigured
from django.db import migrations

log = logging.getLogger(__name__)

# (model, digest columns) of every table that keeps a blob's digest.
DIGESTS = (("Scan", ("blob_sha256",)), ("Diagnosis", ("mask_sha256", "heatmap_sha256")), ("Review", ("mask_sha256",)))
BATCH = 500
HEX_DIGITS = set("0123456789abcdef")


def key_the_digests(apps, schema_editor):
    from hospitals import crypto
    from hospitals.storage import keyed_sha256

    for hospital in apps.get_model("hospitals", "Hospital").objects.all():
        try:
            keyed_sha256(hospital, "00" * 32)
        except (ImproperlyConfigured, crypto.DecryptionError) as problem:
            log.warning("hospital %s keeps plain blob digests: its data key cannot be opened (%s)",
                        hospital.pk, type(problem).__name__)
            continue
        for model_name, columns in DIGESTS:
            model = apps.get_model("diagnostics", model_name)
            changed = []
            for row in model.objects.filter(hospital=hospital).only("pk", *columns).iterator(chunk_size=BATCH):
                for column in columns:
                    value = getattr(row, column)
                    if len(value) == 64 and set(value) <= HEX_DIGITS:
                        setattr(row, column, keyed_sha256(hospital, value))
                changed.append(row)
                if len(changed) >= BATCH:
                    model.objects.bulk_update(changed, columns)
                    changed = []
            if changed:
                model.objects.bulk_update(changed, columns)


class Migration(migrations.Migration):

    dependencies = [
        ("diagnostics", "0007_diagnosis_slice_digest"),
        ("hospitals", "0007_hospital_name_unique_any_case"),
    ]

    # Keyed digests cannot be turned back into plain ones; reads accept both, so going back needs nothing.
    operations = [migrations.RunPython(key_the_digests, migrations.RunPython.noop)]
