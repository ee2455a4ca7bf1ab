"""Schedule again the scans that are still queued long after upload, or still processing long after start.

A scan stays queued with its encrypted file when the task queue could not take it (a broker outage
during upload) or lost it; it stays processing when its task ended without finishing it (retries spent
while the database was down, a broker that lost its unacknowledged messages). Nothing is re-uploaded or
re-decoded: each scan is put back on the diagnostics queue. Safe to rerun, and safe beside tasks that
are merely slow to arrive.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from diagnostics.services import requeue_stalled_scans, stalled_scans
from hospitals.command_options import check_age_min, chosen_hospital


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--hospital", help="only this hospital's scans (its slug); default: every hospital")
        parser.add_argument("--older-than-min", type=int, default=15,
                            help="queued for at least this many minutes since upload, or processing for this "
                                 "long since its analysis started (default 15)")
        parser.add_argument("--dry-run", action="store_true", help="list how many would be scheduled, change nothing")

    def handle(self, *args, hospital=None, older_than_min=15, dry_run=False, verbosity=1, **options):
        check_age_min(older_than_min, least=1, why="a scan uploaded a moment ago is not stalled.")
        chosen = chosen_hospital(hospital)
        older_than = timedelta(minutes=older_than_min)
        count = stalled_scans(hospital=chosen, older_than=older_than).count()
        where = f"at {chosen.slug}" if chosen else "at every hospital"
        if dry_run or count == 0:
            # At -v 0, from cron, nothing is said when there is nothing to do: cron mails whatever a job prints.
            if count == 0 and verbosity < 1:
                return
            self.stdout.write(f"{count} scan(s) {where} queued or processing for over {older_than_min} min"
                              + (" (dry run: nothing scheduled)." if dry_run else "; nothing to do."))
            return
        bar = tqdm(total=count, unit="scan", desc="Scheduling", file=self.stderr._out, disable=verbosity < 1)
        try:
            scheduled, refused = requeue_stalled_scans(hospital=chosen, older_than=older_than,
                                                       progress=lambda scan_id: bar.update(1))
        finally:
            bar.close()
        if refused:
            raise CommandError(f"{scheduled} scan(s) scheduled; the task queue refused {refused}. "
                               "Check the broker (CELERY_BROKER_URL) and rerun.")
        self.stdout.write(self.style.SUCCESS(f"{scheduled} scan(s) {where} scheduled again."))
