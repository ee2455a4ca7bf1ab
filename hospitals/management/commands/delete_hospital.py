"""Delete a hospital for good: its data key is destroyed first (crypto-shredding), then rows and files."""

from django.core.management.base import BaseCommand, CommandError

from hospitals.models import Hospital
from hospitals.services import delete_hospital


class Command(BaseCommand):
    help = "Crypto-shred a hospital: destroy its data key, delete its rows and remove its files."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--yes-destroy-all-data",
            dest="confirm",
            metavar="SLUG",
            help="Repeat the slug here to confirm; without it nothing is deleted.",
        )

    def handle(self, *args, slug, confirm, **options):
        hospital = Hospital.objects.filter(slug=slug).first()
        if hospital is None:
            raise CommandError(f"No hospital with slug {slug!r}")
        counts = {
            "members": hospital.memberships.count(),
            "patients": hospital.patients.count(),
        }
        if confirm != slug:
            raise CommandError(
                f"This destroys {slug}'s data key, {counts['members']} memberships, {counts['patients']} patient "
                f"records and every stored file, irreversibly. Rerun with --yes-destroy-all-data {slug} to confirm."
            )
        delete_hospital(hospital=hospital)
        self.stdout.write(
            self.style.SUCCESS(
                f"Hospital {slug} deleted: data key destroyed, {counts['members']} memberships and "
                f"{counts['patients']} patient records removed, files deleted."
            )
        )
