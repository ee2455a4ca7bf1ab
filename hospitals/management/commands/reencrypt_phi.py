"""Re-encrypt every encrypted column (patients' PHI, review notes, DICOM identifiers, audit notes) under
the newest FIELD_ENCRYPTION_KEY.

Roll-out of a field-key rotation: put the new key first in FIELD_ENCRYPTION_KEY (comma-separated, the
old key after it), deploy, run this command, then drop the old key.
"""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from hospitals.errors import DomainError
from hospitals.field_keys import field_key_count, reencrypt_fields, rows_to_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt every encrypted column under the first key in FIELD_ENCRYPTION_KEY."

    def handle(self, *args, **options):
        bar = tqdm(total=rows_to_reencrypt(), unit="row", desc="Re-encrypting", file=self.stderr._out,
                   disable=options["verbosity"] < 1)
        try:
            report = reencrypt_fields(progress=lambda table, rows: bar.update(rows))
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        finally:
            bar.close()
        tables = ", ".join(f"{count} {label}" for label, count in report.rows_by_table.items())
        self.stdout.write(self.style.SUCCESS(f"{report.rows} row(s) re-encrypted under the first key in "
                                             f"FIELD_ENCRYPTION_KEY: {tables}."))
        if report.rows and not report.rows_under_older_key and field_key_count() > 1:
            # Indistinguishable from a rerun, so a warning and not an error; but after the old key was left
            # first, dropping "the older keys" would leave every token under a key no longer configured.
            self.stdout.write(self.style.WARNING(
                "No stored token was under an older key. If this is a rerun, nothing was left to do. If you have "
                "just added a new key, it is not first in FIELD_ENCRYPTION_KEY: put it first and rerun, and drop "
                "no key before that."
            ))
            return
        self.stdout.write("Every stored token now opens with the first key; the older keys can be dropped.")
