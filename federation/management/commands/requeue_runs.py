"""Hand to the federation queue again the unfinished runs whose follower has not been heard from lately.

The task that submits and follows a run enforces its deadline and fails it when its ServerApp fails or
the SuperLink stays unreachable. A worker killed while following (out of memory, SIGKILL, a host restart)
leaves the run "running" with nobody watching it until the broker redelivers the task, an hour later.
Nothing is submitted twice: a run the SuperLink has is only followed again, and of two deliveries of
one run only one follows it. Safe to rerun, and safe beside followers that are merely slow.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from federation.services import requeue_unwatched_runs, unwatched_runs
from hospitals.command_options import check_age_min


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--older-than-min", type=int, default=5,
                            help="whose follower has been silent for at least this many minutes (default 5; a "
                                 "run not yet submitted gets longer, as submitting it may keep its follower "
                                 "silent for minutes)")
        parser.add_argument("--dry-run", action="store_true", help="list the runs that would be queued, change nothing")

    def handle(self, *args, older_than_min=5, dry_run=False, verbosity=1, **options):
        check_age_min(older_than_min, least=1, why="a live follower says it is alive only every 30 s.")
        older_than = timedelta(minutes=older_than_min)
        run_ids = list(unwatched_runs(older_than=older_than).values_list("id", flat=True))
        if dry_run or not run_ids:
            # At -v 0, from cron, nothing is said when there is nothing to do: cron mails whatever a job prints.
            if not run_ids and verbosity < 1:
                return
            listed = f": {', '.join(str(run_id) for run_id in run_ids)}" if run_ids else ""
            self.stdout.write(f"{len(run_ids)} unfinished run(s) whose follower was silent for over "
                              f"{older_than_min} min{listed}"
                              + (" (dry run: nothing queued)." if dry_run else "; nothing to do."))
            return
        bar = tqdm(total=len(run_ids), unit="run", desc="Queueing", file=self.stderr._out, disable=verbosity < 1)
        try:
            queued, refused = requeue_unwatched_runs(older_than=older_than, progress=lambda run_id: bar.update(1))
        finally:
            bar.close()
        if refused:
            raise CommandError(f"{queued} run(s) handed to the federation queue; the task queue refused {refused}. "
                               "Check the broker (CELERY_BROKER_URL) and rerun.")
        self.stdout.write(self.style.SUCCESS(f"{queued} run(s) handed to the federation queue again."))
