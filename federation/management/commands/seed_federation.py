"""Give hospitals reviewed cases from the shared training split, IID or label-skewed (Dirichlet).

Each hospital also gets tumours with an expert outline from the segmentation set's training blocks
(`--outlined-per-hospital`), as if its doctors had corrected them, so that the segmenter can be trained
too. Cases are imported through diagnostics' create_reviewed_case, so they are encrypted under each
hospital's own key exactly like a doctor-reviewed upload; importing the same image twice is a no-op.
"""

from collections import Counter

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from hospitals.models import Hospital

DEMO_HOSPITALS = "st-brigid,riverside-general,northfield-university"


def seed_partition(hospitals, *, partition: str, per_hospital: int, alpha: float = 0.5, seed: int = 0,
                   progress=True) -> dict[str, Counter]:
    """Split the training rows among `hospitals` and import each share; returns label counts per hospital."""
    from diagnostics.ml.partition import hospital_shares
    from diagnostics.training_data import create_reviewed_case
    from federation.datasets import kaggle_split

    rows = kaggle_split("train")
    labels = [r["label"] for r in rows]
    shares = hospital_shares(labels, len(hospitals), partition=partition, per_hospital=per_hospital, alpha=alpha,
                             seed=seed)
    counts = {}
    for hospital, chosen in zip(hospitals, shares):
        counts[hospital.slug] = Counter(labels[i] for i in chosen)
        for index in tqdm(chosen, desc=hospital.slug, disable=not progress, unit="case"):
            path = settings.NEUROFED_DATA_DIR / rows[index]["path"]
            create_reviewed_case(hospital, path.read_bytes(), rows[index]["label"])
    return counts


def seed_outlined(hospitals, *, per_hospital: int, progress=True) -> dict[str, int]:
    """Import tumours with their expert outlines from the Figshare training blocks, dealt out in turn so each
    hospital gets every tumour class; returns how many each hospital got."""
    from diagnostics.ml.readers import read_grayscale, read_mask
    from diagnostics.training_data import create_reviewed_case

    dealt = outlined_slices(per_hospital * len(hospitals))
    counts = {}
    for offset, hospital in enumerate(hospitals):
        mine = dealt[offset::len(hospitals)]
        for case in tqdm(mine, desc=f"{hospital.slug} outlines", disable=not progress, unit="case"):
            create_reviewed_case(hospital, read_grayscale(case.image_path), case.label, mask=read_mask(case.mask_path))
        counts[hospital.slug] = len(mine)
    return counts


def outlined_slices(count: int) -> list:
    """Up to `count` Figshare training slices, spread over the set, none a copy of an image the coordinator
    calibrates or scores a federated classifier on.

    Many Kaggle images are Figshare slices, and an outlined tumour is a reviewed case with its class too:
    a copy of a coordinator's validation image would train the classifier on a picture it is then scored
    on, and inflate the score that promotion weighs against the active model's.
    """
    import numpy as np

    from diagnostics.ml.data import _figshare_slices_copied
    from diagnostics.ml.partition import figshare_block_split
    from diagnostics.ml.readers import list_figshare_slices
    from federation.datasets import kaggle_split

    if count < 1:
        return []
    slices = list_figshare_slices(settings.NEUROFED_DATA_DIR / FIGSHARE)
    splits = figshare_block_split([s.index for s in slices])
    training = [s for s, split in zip(slices, splits) if split == "train"]
    # Twice as many as wanted, so that leaving out the copies still leaves enough.
    candidates = training[::max(1, len(training) // (2 * count))]
    scored = kaggle_split("val") + kaggle_split("calib")
    copied = _figshare_slices_copied(np.asarray([int(row["phash"], 16) for row in scored], dtype=np.uint64),
                                     [row["label"] for row in scored], candidates, workers=2)
    copies = set(copied[copied >= 0].tolist())
    kept = [s for index, s in enumerate(candidates) if index not in copies]
    if len(kept) <= count:
        return kept
    # Evenly over what is left, not its first part: the set's slices come in runs of one class.
    return [kept[i] for i in np.linspace(0, len(kept) - 1, count).round().astype(int)]


FIGSHARE = "figshare-brain-tumor-seg"


def check_seed_options(*, per_hospital: int, alpha: float, outlined_per_hospital: int = 0) -> None:
    """Refuse, before any hospital is touched, what would fail halfway through an import or import nothing."""
    if per_hospital < 1:
        raise CommandError(f"--per-hospital must be at least 1, not {per_hospital}")
    if not alpha > 0:
        raise CommandError(f"--alpha (the Dirichlet concentration) must be above 0, not {alpha}")
    if outlined_per_hospital < 0:
        raise CommandError(f"--outlined-per-hospital must be 0 or more, not {outlined_per_hospital}")
    for needed in ("brain-tumor-mri",) + ((FIGSHARE,) if outlined_per_hospital else ()):
        if not (settings.NEUROFED_DATA_DIR / needed).is_dir():
            raise CommandError(f"no {needed} data set under {settings.NEUROFED_DATA_DIR}; "
                               "set NEUROFED_DATA_DIR to the shared data folder")


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--partition", choices=["iid", "label-skew"], default="iid")
        parser.add_argument("--hospitals", default=DEMO_HOSPITALS, help="comma-separated slugs")
        parser.add_argument("--per-hospital", type=int, default=600)
        parser.add_argument("--outlined-per-hospital", type=int, default=60,
                            help="tumours with an expert outline per hospital, for the segmenter (0: none)")
        parser.add_argument("--alpha", type=float, default=0.5, help="Dirichlet concentration for label-skew")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--opt-in", action="store_true", help="also opt the hospitals in to federation")

    def handle(self, *args, partition, hospitals, per_hospital, alpha, seed, opt_in, outlined_per_hospital,
               **options):
        check_seed_options(per_hospital=per_hospital, alpha=alpha, outlined_per_hospital=outlined_per_hospital)
        slugs = [s for s in hospitals.split(",") if s]
        if not slugs:
            raise CommandError(f"--hospitals {hospitals!r} names no hospital; give their slugs separated by commas, "
                               f"e.g. {DEMO_HOSPITALS}")
        found = {h.slug: h for h in Hospital.objects.filter(slug__in=slugs)}
        missing = [s for s in slugs if s not in found]
        if missing:
            raise CommandError(f"No such hospitals: {', '.join(missing)} (run seed_demo first?)")
        chosen = [found[s] for s in slugs]
        if opt_in:
            from hospitals.services import update_hospital_settings

            for hospital in chosen:
                update_hospital_settings(hospital=hospital, actor=None, federation_opt_in=True)
        counts = seed_partition(chosen, partition=partition, per_hospital=per_hospital, alpha=alpha, seed=seed)
        outlined = seed_outlined(chosen, per_hospital=outlined_per_hospital) if outlined_per_hospital else {}
        for slug, counter in counts.items():
            self.stdout.write(f"{slug}: {sum(counter.values())} cases " +
                              ", ".join(f"{k}={v}" for k, v in sorted(counter.items())) +
                              (f"; {outlined[slug]} outlined tumours" if outlined else ""))
        short = {slug: sum(counter.values()) for slug, counter in counts.items() if sum(counter.values()) < per_hospital}
        if short:
            # Label-skewed shares are uneven by design: a hospital's share may hold fewer than asked.
            why = (f"more than the shared training set holds for {len(counts)} hospitals" if partition == "iid"
                   else "more than some hospitals' label-skewed shares hold")
            self.stdout.write(self.style.WARNING(
                f"--per-hospital {per_hospital} is {why}: {', '.join(f'{slug} got {n}' for slug, n in short.items())}."))
        self._warn_below_minimum(chosen)

    def _warn_below_minimum(self, hospitals) -> None:
        """Name the hospitals a run would not count (their nodes refuse to train on so few cases)."""
        from federation.services import training_case_counts

        for hospital in hospitals:
            cases = training_case_counts(hospital)
            least = cases["minimum_cases"]
            # A hospital's outlined tumours are some of its reviewed cases: short of the second first.
            if cases["reviewed_cases"] < least:
                short = "reviewed cases: runs leave it out"
            elif cases["outlined_tumours"] < least:
                short = "outlined tumours: runs of the segmenter leave it out"
            else:
                continue
            self.stdout.write(self.style.WARNING(
                f"{hospital.slug} has fewer than {least} {short} (FEDERATION_MIN_NODE_CASES)."))
