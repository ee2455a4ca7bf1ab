"""Make a federation CA and SuperLink certificate (--hosts), or a node key pair (--node NAME)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from federation import pki


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="folder to write into")
        parser.add_argument("--hosts", default="", help="comma-separated names/IPs the SuperLink is reached by")
        parser.add_argument("--node", default="", help="make a node key pair with this name instead")

    def handle(self, *args, out, hosts, node, **options):
        folder = Path(out)
        if node:
            private, public = pki.make_node_key(folder, node)
            self.stdout.write(f"{private} (keep it on the node) and {public} (send it to the coordinator to "
                              "register: flwr supernode register)")
            return
        names = [h for h in hosts.split(",") if h]
        if not names:
            raise CommandError("Give --hosts (the SuperLink's DNS names or IPs) or --node NAME.")
        paths = pki.make_superlink_certificates(folder, names)
        self.stdout.write("\n".join(f"{k}: {v}" for k, v in paths.items()))
