"""Rewrap every hospital's data key under the current master key, without touching a single blob.

Roll-out: set NEUROFED_MASTER_KEY(_FILE) to the new key and NEUROFED_PREVIOUS_MASTER_KEY(_FILE) to the
old one, run this command, then remove the previous key. Safe to rerun: hospitals already under the
new key are skipped, and each hospital is rewrapped in its own transaction.
"""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from hospitals import keys
from hospitals.crypto import DecryptionError, key_id
from hospitals.models import Hospital
from hospitals.services import rotate_master_key


class Command(BaseCommand):
    help = "Rewrap every hospital data key under the current master key (blobs are not re-encrypted)."

    def handle(self, *args, **options):
        try:
            current = key_id(keys.current_master_key())
            previous = keys.previous_master_key()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        if previous is not None and key_id(previous) == current:
            raise CommandError(
                "NEUROFED_PREVIOUS_MASTER_KEY is the same key as NEUROFED_MASTER_KEY, so nothing would be rewrapped; "
                "set NEUROFED_MASTER_KEY to the new key and NEUROFED_PREVIOUS_MASTER_KEY to the one it replaces."
            )
        self.stdout.write(f"Current master key: {current}")
        if previous is not None:
            self.stdout.write(f"Previous master key: {key_id(previous)}")
        bar = tqdm(total=Hospital.objects.count(), unit="hospital", desc="Rewrapping", file=self.stderr._out,
                   disable=options["verbosity"] < 1)
        try:
            report = rotate_master_key(progress=lambda hospital: bar.update(1))
        except (ImproperlyConfigured, DecryptionError) as exc:
            raise CommandError(f"{exc}. Hospitals rewrapped so far keep the new key; rerun when fixed.") from exc
        finally:
            bar.close()
        # A process still running with only the old key can create a hospital under it while this runs,
        # after the rotation went past. Success would tell the operator to drop that key, and with it
        # that hospital's data.
        left = list(
            Hospital.objects.exclude(master_key_id=current).order_by("slug").values_list("slug", "master_key_id")
        )
        if left:
            named = ", ".join(f"{slug} (master key {key})" for slug, key in left)
            raise CommandError(
                f"{len(left)} hospital key(s) are still under another master key, created while the rotation ran: "
                f"{named}. Restart every process with the new NEUROFED_MASTER_KEY, keep "
                "NEUROFED_PREVIOUS_MASTER_KEY, and rerun."
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"{report.rewrapped} hospital key(s) rewrapped, {report.already_current} already under {current}."
            )
        )
