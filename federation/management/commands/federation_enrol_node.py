"""Enrol a hospital's SuperNode key with the SuperLink, or remove the enrolment.

Run on the coordinator, whose SuperLink authenticates nodes (FEDERATION_NODE_AUTH=1). The hospital
sends only the public half of its node key (`federation_certs --node <slug>` on its own machine).
Once enrolled, a node is believed only for that hospital, and a hospital has one node; `--remove`
unregisters the key (a replaced machine, a key that leaked) so that another can be enrolled.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from federation import services
from hospitals.errors import DomainError
from hospitals.models import Hospital


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--hospital", required=True, help="the hospital's slug")
        parser.add_argument("public_key", nargs="?", help="the node's public key (OpenSSH format, <slug>.pub)")
        parser.add_argument("--remove", action="store_true", help="unregister the hospital's enrolled node instead")

    def handle(self, *args, hospital, public_key=None, remove=False, **options):
        found = Hospital.objects.filter(slug=hospital).first()
        if found is None:
            raise CommandError(f"No hospital {hospital!r}.")
        if remove == bool(public_key):
            raise CommandError("Give the node's public key to enrol it, or --remove (and no key) to remove it.")
        try:
            if remove:
                enrolment = services.unenrol_node(hospital=found)
                self.stdout.write(self.style.SUCCESS(f"Node {enrolment.node_id} of {hospital} unregistered; "
                                                     "the hospital can enrol a new key."))
                return
            key = Path(public_key)
            if not key.is_file():
                raise CommandError(f"No public key file at {public_key}.")
            if "PRIVATE KEY" in key.read_text(errors="replace"):
                raise CommandError(f"{public_key} is a private key: send and enrol only the public half (.pub).")
            enrolment = services.enrol_node(hospital=found, public_key=key)
        except DomainError as refused:
            raise CommandError(refused.detail) from None
        self.stdout.write(self.style.SUCCESS(f"Node {enrolment.node_id} enrolled for {hospital}."))
