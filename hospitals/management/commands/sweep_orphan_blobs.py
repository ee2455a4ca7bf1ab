"""Delete the stored blob files that no row names, and the folders of hospitals that no longer exist.

A process killed (SIGKILL, out of memory, a power cut) between writing a blob and committing the row that
names it leaves such a file; a crash during delete_hospital's clean-up, or a file it could not remove,
leaves a gone hospital's folder. Only files last written before the cutoff are considered, so a write in
flight, whose row has not committed yet, is never touched; a file a row names is never deleted. Safe to
rerun, and to run from cron beside a live platform.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat
from tqdm import tqdm

from hospitals.command_options import check_age_min, chosen_hospital
from hospitals.storage import find_orphan_candidates, sweep_orphan_blobs

# A blob's row commits within seconds of its write (an upload, an analysis, a review); the floor leaves
# room for a database stalled under load, or a clock that disagrees with the file server's.
MIN_OLDER_THAN = 10


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--hospital", help="only this hospital's folder (its slug); default: every hospital's, "
                                               "and the folders of hospitals that no longer exist")
        # Named as requeue_scans' and requeue_runs' option in the same unit; --older-than, its first name,
        # still works (crontabs hold it).
        parser.add_argument("--older-than-min", "--older-than", dest="older_than_min", type=int, default=60,
                            metavar="MINUTES", help=f"only files last written at least this many minutes ago "
                                                    f"(default 60, at least {MIN_OLDER_THAN})")
        parser.add_argument("--dry-run", action="store_true", help="list the files that would go, delete nothing")

    def handle(self, *args, hospital=None, older_than_min=60, dry_run=False, verbosity=1, **options):
        check_age_min(older_than_min, least=MIN_OLDER_THAN,
                      why="a younger file may belong to a write whose row has not committed yet.")
        chosen = chosen_hospital(hospital)
        candidates = find_orphan_candidates(hospital=chosen, older_than=timedelta(minutes=older_than_min))
        bar = tqdm(total=len(candidates.files), unit="file", desc="Checking", file=self.stderr._out,
                   disable=verbosity < 1)
        try:
            report = sweep_orphan_blobs(candidates, dry_run=dry_run, progress=lambda path: bar.update(1))
        finally:
            bar.close()
        # At -v 0, from cron, nothing is said when nothing was (or, in a dry run, would be) removed: cron
        # mails whatever a job prints. Files that could not be removed fail the command all the same.
        if verbosity >= 1 or report.orphans or report.gone_hospital_folders:
            self._summarise(report, chosen, older_than_min, dry_run, verbosity)
        if report.failed:
            raise CommandError(f"{report.failed} orphaned file(s) could not be removed (the log says why); "
                               "fix the cause and rerun.")

    def _summarise(self, report, chosen, older_than_min, dry_run, verbosity):
        if dry_run:
            for path in report.orphans:
                self.stdout.write(path)
        where = f"{chosen.slug}'s folder" if chosen else "every hospital's folder"
        done = "would be deleted (dry run: nothing deleted)" if dry_run else "deleted"
        self.stdout.write(self.style.SUCCESS(
            f"{report.checked} file(s) older than {older_than_min} min checked in {where}: {len(report.orphans)} "
            f"named by no row {done} ({filesizeformat(report.orphan_bytes)}), "
            f"{report.checked - len(report.orphans)} kept."
        ))
        if report.gone_hospital_folders:
            removed = "" if dry_run else f"; {report.folders_removed} emptied folder(s) removed"
            self.stdout.write(f"{report.gone_hospital_folders} folder(s) of hospitals that no longer exist{removed}.")
        if report.unrecognised and verbosity >= 1:  # the same files every day: no news for cron
            self.stdout.write(f"{report.unrecognised} file(s) not written by the blob store left alone.")
