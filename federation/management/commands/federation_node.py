"""Run one hospital's SuperNode (and its warm ClientApp executor) in the foreground.

The node trains only on the named hospital's reviewed cases; the hospital must have opted in.
Plain connections to a SuperLink are allowed on loopback only; elsewhere give --root-certificates.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from federation import conf, daemons
from hospitals.models import Hospital


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--hospital", required=True, help="the hospital's slug")
        parser.add_argument("--superlink", default=None, help="SuperLink host:port (default from settings)")
        parser.add_argument("--root-certificates", default=None, help="CA certificate of the SuperLink (TLS)")
        parser.add_argument("--auth-key", default=None, help="this node's private key (node authentication)")
        parser.add_argument("--runtime-port", type=int, default=None, help="local Runtime API port (default: free)")
        parser.add_argument("--cold", action="store_true", help="Flower's default: a new ClientApp per message")

    def handle(self, *args, hospital, superlink=None, root_certificates=None, auth_key=None, runtime_port=None,
               cold=False, **options):
        found = Hospital.objects.filter(slug=hospital).first()
        if found is None:
            raise CommandError(f"No hospital {hospital!r}.")
        if not found.federation_opt_in:
            raise CommandError(f"Hospital {hospital} has not opted in to federated learning; its admin can opt in "
                               "in the hospital settings.")
        try:
            superlink = conf.superlink_address(superlink)
        except ImproperlyConfigured as problem:
            raise CommandError(str(problem)) from None
        if root_certificates is None and conf.tls_dir():
            ca = _existing_file("FEDERATION_TLS_DIR's CA certificate", str(conf.tls_dir() / "ca.crt"))
        else:
            ca = _existing_file("--root-certificates", root_certificates)
        key = _existing_file("--auth-key", auth_key)
        tls = daemons.Tls(ca=ca) if ca else None
        if tls is None and not daemons.is_loopback(superlink):
            raise CommandError(f"{superlink} is not a loopback address: give --root-certificates to connect over TLS.")
        node = daemons.start_node(conf.federation_home(), hospital_slug=hospital, superlink=superlink,
                                  runtime_port=runtime_port, tls=tls, auth_key=key, warm=not cold)
        self.stdout.write(f"SuperNode for {hospital} -> {superlink} ({'TLS' if tls else 'plain, loopback'}), "
                          f"log {node.log_path}")
        raise SystemExit(daemons.supervise([node]))


def _existing_file(option: str, given: str | None) -> Path | None:
    """The file an option names, made absolute: the node runs in the project's folder, not where the
    command was typed, and a missing file is better said now than as a node that never connects."""
    if not given:
        return None
    path = Path(given).resolve()
    if not path.is_file():
        raise CommandError(f"{option} {given}: no such file ({path}).")
    return path
