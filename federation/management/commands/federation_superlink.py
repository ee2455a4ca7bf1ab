"""Run the federation's SuperLink in the foreground (Ctrl-C or SIGTERM stops it).

State (runs, nodes) lives in FEDERATION_HOME/state.db, so a restart keeps its runs. Plain connections
are allowed on loopback only; anywhere else give --tls-dir (ca.crt, server.pem, server.key). --listen-all
listens on every interface (a container, a coordinator behind NAT) while nodes connect by --address.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from federation import conf, daemons


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--address", default=None, help="host:port to listen on (default from settings)")
        parser.add_argument("--tls-dir", default=None, help="folder with ca.crt, server.pem and server.key")
        parser.add_argument("--node-auth", action="store_true", default=None,
                            help="accept only SuperNodes whose public key is registered")
        parser.add_argument("--listen-all", action="store_true", default=None,
                            help="listen on every interface (0.0.0.0); nodes still connect by --address "
                                 "(default from FEDERATION_SUPERLINK_LISTEN_ALL)")

    def handle(self, *args, address=None, tls_dir=None, node_auth=None, listen_all=None, **options):
        try:
            address = conf.superlink_address(address)
        except ImproperlyConfigured as problem:
            raise CommandError(str(problem)) from None
        tls_folder = Path(tls_dir) if tls_dir else conf.tls_dir()
        tls = daemons.Tls.from_dir(tls_folder) if tls_folder else None
        if tls and tls.missing():
            option = "--tls-dir" if tls_dir else "FEDERATION_TLS_DIR"
            raise CommandError(f"{option} {tls_folder}: no {', '.join(p.name for p in tls.missing())} there "
                               "(make them with federation_certs --hosts).")
        if tls is None and not daemons.is_loopback(address):
            raise CommandError(f"{address} is not a loopback address: give --tls-dir so nodes connect over TLS.")
        listen_all = conf.superlink_listen_all() if listen_all is None else listen_all
        if listen_all and tls is None:
            raise CommandError("Listening on every interface needs TLS: give --tls-dir (or FEDERATION_TLS_DIR); "
                               "without it the SuperLink listens on loopback only.")
        host, port = address.rsplit(":", 1)
        home = conf.federation_home()
        node_auth = conf.node_auth() if node_auth is None else node_auth
        superlink = daemons.start_superlink(home, host=host, port=int(port), tls=tls, node_auth=node_auth,
                                            listen_all=listen_all)
        # All said here so the operator can check the setup against the docs from this one line.
        where = f"{address}, listening on every interface (port {port})" if listen_all else address
        self.stdout.write(f"SuperLink on {where} ({'TLS' if tls else 'plain, loopback'}), node authentication "
                          f"{'on' if node_auth else 'off'}, state in {home / 'state.db'}, log {superlink.log_path}")
        raise SystemExit(daemons.supervise([superlink]))
