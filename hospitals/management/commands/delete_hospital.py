"""Delete a hospital for good: its data key is destroyed first (crypto-shredding), then rows and files."""

from django.core.management.base import BaseCommand, CommandError

from hospitals.models import Hospital
from hospitals.services import delete_hospital


class Command(BaseCommand):
    help = "Crypto-shred a hospital: destroy its data key, delete its rows and remove its files."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the hospital's short name, as in its addresses (/h/<slug>/)")
        parser.add_argument(
            "--yes-destroy-all-data",
            dest="confirm",
            metavar="SLUG",
            help="Repeat the slug here to confirm; without it nothing is deleted.",
        )

    def handle(self, *args, slug, confirm, **options):
        hospital = Hospital.objects.filter(slug=slug).first()
        if hospital is None:
            raise CommandError(f"No hospital with the slug {slug!r}.")
        # Scans include the training cases imported for federated learning, which belong to no patient record.
        held = ", ".join(_counted(count, what) for count, what in (
            (hospital.memberships.count(), "membership"), (hospital.patients.count(), "patient record")))
        held += f" and {_counted(hospital.scans.count(), 'scan')}"
        if confirm != slug:
            raise CommandError(
                f"This destroys {slug}'s data key, {held} with every stored file, irreversibly. Rerun with "
                f"--yes-destroy-all-data {slug} to confirm."
            )
        deletion = delete_hospital(hospital=hospital)
        deleted = f"Hospital {slug} deleted: data key destroyed, {held} removed"
        if not deletion.files_left:
            self.stdout.write(self.style.SUCCESS(f"{deleted}, files deleted."))
            return
        # The deletion has committed and stands: what is left is unreadable without the key, and only disk.
        self.stdout.write(self.style.SUCCESS(f"{deleted}."))
        self.stderr.write(
            f"{deletion.files_left} stored file(s) and folder(s) under MEDIA_ROOT/hospitals/{hospital.pk}/ could "
            "not be removed (the log says why). They are unreadable without the destroyed key. Fix the cause "
            "and run manage.py sweep_orphan_blobs, which removes them."
        )


def _counted(count: int, what: str) -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"
