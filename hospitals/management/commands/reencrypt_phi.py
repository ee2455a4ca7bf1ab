"""Re-encrypt every patient's PHI columns under the newest FIELD_ENCRYPTION_KEY.

Roll-out of a field-key rotation: put the new key first in FIELD_ENCRYPTION_KEY (comma-separated, the
old key after it), deploy, run this command, then drop the old key.
"""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from hospitals.errors import DomainError
from hospitals.models import Patient
from hospitals.services import reencrypt_phi


class Command(BaseCommand):
    help = "Re-encrypt patient PHI under the first key in FIELD_ENCRYPTION_KEY."

    def handle(self, *args, **options):
        bar = tqdm(total=Patient.objects.count(), unit="patient", desc="Re-encrypting", file=self.stderr._out)
        try:
            count = reencrypt_phi(progress=lambda patient_id: bar.update(1))
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        finally:
            bar.close()
        self.stdout.write(self.style.SUCCESS(f"{count} patient record(s) re-encrypted under the newest key."))
