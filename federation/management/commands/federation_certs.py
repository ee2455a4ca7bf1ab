"""Make a federation CA and SuperLink certificate (--hosts), or a node key pair (--node NAME).

Existing keys are never replaced without --force: a new CA cuts off every enrolled node, and a new node
key no longer matches the public key registered with the coordinator.
"""

import ipaddress
import re
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from federation import pki


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="folder to write into")
        parser.add_argument("--hosts", default="", help="comma-separated names/IPs the SuperLink is reached by")
        parser.add_argument("--node", default="", help="make a node key pair with this name instead")
        parser.add_argument("--force", action="store_true",
                            help="replace existing keys (a new CA cuts off every enrolled node; a new node key "
                                 "must be registered with the coordinator again)")

    def handle(self, *args, out, hosts, node, force, **options):
        folder = Path(out)
        if folder.exists() and not folder.is_dir():
            raise CommandError(f"--out {out} is a file, not a folder; pass the folder to write the keys into.")
        if node:
            # The name becomes a file name in --out; a path in it would write elsewhere.
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", node):
                raise CommandError("--node must be a plain name (letters, digits, '.', '_', '-'), e.g. st-brigid.")
            try:
                private, public = pki.make_node_key(folder, node, force=force)
            except pki.KeysExist as error:
                raise CommandError(f"{error} already exist(s); a new key would no longer match the public key "
                                   "registered with the coordinator. Pass --force to replace it.") from error
            except OSError as error:
                raise self._unwritable(out, error) from error
            # Not `flwr supernode register`: a key registered that way is bound to no hospital, and the
            # coordinator refuses its node as unenrolled.
            self.stdout.write(f"{private} (keep it on the node) and {public} (send it to the coordinator, who "
                              f"enrols it for the hospital: python manage.py federation_enrol_node --hospital "
                              f"<hospital slug> {public.name})")
            return
        names = [h.strip() for h in hosts.split(",") if h.strip()]
        if not names:
            raise CommandError("Give --hosts (the SuperLink's DNS names or IPs) or --node NAME.")
        # A name that is neither would go into the certificate as a DNS name no node could match, and TLS
        # would fail on every node later, far from here.
        wrong = [name for name in names if not _is_host_name_or_ip(name)]
        if wrong:
            raise CommandError(f"--hosts: {', '.join(repr(name) for name in wrong)} is neither a DNS name nor an IP "
                               "address; give the names nodes reach the SuperLink by, separated by commas, e.g. "
                               "fl.example.org,10.0.0.5")
        try:
            paths = pki.make_superlink_certificates(folder, names, force=force)
        except pki.KeysExist as error:
            raise CommandError(f"{error} already exist(s); a new CA and SuperLink key would cut off every node "
                               "enrolled with the current ones. Pass --force to replace them.") from error
        except OSError as error:
            raise self._unwritable(out, error) from error
        self.stdout.write("\n".join(f"{k}: {v}" for k, v in paths.items()))

    @staticmethod
    def _unwritable(out: str, error: OSError) -> CommandError:
        # Nothing was replaced: the keys are made aside and swapped in only once all of them are written.
        return CommandError(f"Cannot write the keys into --out {out}: {error.strerror or error}. Nothing was "
                            "changed; pass a folder you can write to.")


# Underscores too: container service names (neurofed_superlink) have them, and nodes connect by them.
HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def _is_host_name_or_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    labels = name.rstrip(".").split(".")
    if labels[0] == "*" and len(labels) > 2:  # a wildcard name, *.example.org
        labels = labels[1:]
    return len(name) <= 253 and all(HOST_LABEL.fullmatch(label) for label in labels)
