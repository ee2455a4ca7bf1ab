"""Check that every diagnosed scan still decodes to the image it was analysed on.

Run it after changing a decoder or upgrading pydicom, nibabel, Pillow or numpy, against a copy of
production, before the upgrade goes live: a scan listed as changed would show its outline, heatmap and
slice number on another picture than the one they were made for. Exits with an error when any scan
changed or no longer decodes. ``--record-missing`` gives diagnoses recorded before digests were kept the
digest of what their file decodes to now: run it once on the version that analysed them.
"""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from diagnostics.decode_check import diagnoses_to_check, verify_decodes
from hospitals.command_options import chosen_hospital
from hospitals.keys import hospitals_without_their_master_key, named_with_their_master_keys


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--hospital", help="only this hospital's scans (its slug); default: every hospital")
        parser.add_argument("--record-missing", action="store_true",
                            help="record the digest of diagnoses that have none, from what their file decodes "
                                 "to now (on the version that analysed them)")

    def handle(self, *args, hospital=None, record_missing=False, verbosity=1, **options):
        chosen = chosen_hospital(hospital)
        missing = [(slug, key_id) for slug, key_id in hospitals_without_their_master_key()
                   if chosen is None or slug == chosen.slug]
        if missing:
            # Every scan of such a hospital would be listed as unreadable, for want of a key, not a decoder.
            raise CommandError("no configured master key wraps the data key of "
                               + named_with_their_master_keys(missing) + "; set NEUROFED_PREVIOUS_MASTER_KEY to the key the hospital was wrapped with, "
                                 "as for the copy's backup (docs/foundation.md, \"Encryption\")")
        bar = tqdm(total=diagnoses_to_check(chosen).count(), unit="scan", desc="Decoding",
                   file=self.stderr._out, disable=verbosity < 1)
        try:
            report = verify_decodes(hospital=chosen, record_missing=record_missing, progress=bar.update)
        finally:
            bar.close()
        where = f"at {chosen.slug}" if chosen else "at every hospital"
        self.stdout.write(f"{report.unchanged} diagnosed scan(s) {where} decode as when they were analysed.")
        if report.recorded:
            self.stdout.write(f"{report.recorded} diagnosis(es) from before digests were kept now hold the digest "
                              "of what their file decodes to.")
        if report.unrecorded:
            self.stdout.write(self.style.WARNING(
                f"{report.unrecorded} diagnosis(es) from before digests were kept were not checked; "
                "--record-missing records them, on the version that analysed them."))
        problems = []
        if report.changed:
            problems.append(f"{len(report.changed)} scan(s) decode to another image than the one analysed, so their "
                            "outline, heatmap and slice number no longer fit it: "
                            + ", ".join(map(str, report.changed)))
        if report.unreadable:
            problems.append(f"{len(report.unreadable)} scan(s) no longer decode or open: "
                            + ", ".join(map(str, report.unreadable)))
        if problems:
            raise CommandError(" ".join(problems) + ". Keep the decoder and libraries that analysed them "
                                                     "(docs/pipeline.md, \"Stored scans and decoder changes\").")
