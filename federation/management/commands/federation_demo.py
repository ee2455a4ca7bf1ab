"""The demo federation on this machine: a SuperLink and one SuperNode per opted-in hospital (foreground)."""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from federation import conf, daemons
from hospitals.models import Hospital


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--hospitals", default="", help="comma-separated slugs (default: every opted-in one)")

    def handle(self, *args, hospitals="", **options):
        try:
            address = conf.superlink_address()
        except ImproperlyConfigured as problem:
            raise CommandError(str(problem)) from None
        if not daemons.is_loopback(address):
            raise CommandError("The demo federation runs on loopback; for several sites see docs/federation.md.")
        slugs = [s.strip() for s in hospitals.split(",") if s.strip()] or list(
            Hospital.objects.filter(federation_opt_in=True).order_by("slug").values_list("slug", flat=True))
        if not slugs:
            raise CommandError("No hospital has opted in to federated learning (see seed_federation).")
        opted_in = set(Hospital.objects.filter(slug__in=slugs, federation_opt_in=True).values_list("slug", flat=True))
        # A node for a hospital that does not exist, or has not opted in, could only refuse every task.
        refused = [slug for slug in slugs if slug not in opted_in]
        if refused:
            raise CommandError(f"--hospitals: {', '.join(refused)} {'is' if len(refused) == 1 else 'are'} not a "
                               "hospital that takes part in federated learning (see seed_federation --opt-in); "
                               "nothing was started.")
        home = conf.federation_home()
        host, port = address.rsplit(":", 1)
        started = [daemons.start_superlink(home, host=host, port=int(port))]
        try:
            for slug in slugs:
                started.append(daemons.start_node(home, hospital_slug=slug, superlink=address))
        except Exception:
            for daemon in started:
                daemon.stop()
            raise
        self.stdout.write(f"SuperLink on {address}; nodes for {', '.join(slugs)}; logs in {home / 'logs'}")
        raise SystemExit(daemons.supervise(started))
