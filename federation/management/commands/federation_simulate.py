"""Centralised training against FedAvg in one process, on the experiment's hospitals; prints a table.

The in-process counterpart of `federation_experiment`: the same hospitals' shares of the shared training
split (read in place, not imported), the same network, local training, schedule, server step and initial
weights, without daemons (federation.simulation). Minutes instead of most of an hour, so a change can be
tried here first, on the calibration split, and confirmed by the deployed experiment.
"""

import argparse
import time

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from federation.experiment import gap_line
from federation.learning import DEFAULT_SERVER_STEP
from federation.management.commands.seed_federation import check_seed_options

PARTITIONS = ("iid", "label-skew")
SPLITS = ("calib", "val")


def _numbers(raw: str, what: str, cast=int) -> list:
    try:
        return [cast(part) for part in raw.split(",") if part]
    except ValueError:
        raise CommandError(f"{what} takes comma-separated numbers, not {raw!r}") from None


def _choices(raw: str, what: str, allowed: tuple[str, ...]) -> list[str]:
    chosen = [part for part in raw.split(",") if part]
    unknown = [part for part in chosen if part not in allowed]
    if unknown or not chosen:
        raise CommandError(f"{what}: choose from {', '.join(allowed)} (got {raw!r})")
    return chosen


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--partitions", default="iid", help="comma-separated: iid, label-skew")
        parser.add_argument("--hospitals", type=int, default=3)
        parser.add_argument("--per-hospital", type=int, default=600)
        parser.add_argument("--alpha", type=float, default=0.5, help="Dirichlet concentration for label-skew")
        parser.add_argument("--image-size", type=int, default=64)
        parser.add_argument("--width", type=int, default=16)
        parser.add_argument("--rounds", type=int, default=20)
        parser.add_argument("--local-epochs", type=int, default=1)
        parser.add_argument("--batch-size", type=int, default=32, help="centralised batch size")
        parser.add_argument("--node-batch-size", type=int, default=0,
                            help="each node's batch size; 0: batch size / hospitals, as federation_experiment")
        parser.add_argument("--learning-rate", type=float, default=6e-3)
        parser.add_argument("--server-step", type=float, default=DEFAULT_SERVER_STEP)
        parser.add_argument("--proximal-mu", type=float, default=0.0,
                            help="FedProx's proximal term for the nodes (0: FedAvg's plain local training)")
        parser.add_argument("--logit-adjustment", action=argparse.BooleanOptionalAction, default=True)
        parser.add_argument("--seeds", default="0", help="comma-separated seeds of the initial weights and shuffling")
        parser.add_argument("--splits", default="calib,val",
                            help="held-out splits to score on; choose on calib, report on val")
        parser.add_argument("--rows", default="centralised,fedavg", help="comma-separated: centralised, fedavg")

    def handle(self, *args, **o):
        from federation import learning
        from federation.datasets import shared_split, simulated_hospital_shares
        from federation.simulation import simulate_fedavg

        partitions = _choices(o["partitions"], "--partitions", PARTITIONS)
        splits = _choices(o["splits"], "--splits", SPLITS)
        rows_wanted = _choices(o["rows"], "--rows", ("centralised", "fedavg"))
        seeds = _numbers(o["seeds"], "--seeds")
        if o["proximal_mu"] < 0:
            raise CommandError("--proximal-mu cannot be negative")
        if min(o["rounds"], o["local_epochs"], o["hospitals"], o["per_hospital"], o["batch_size"]) < 1:
            raise CommandError("--rounds, --local-epochs, --hospitals, --per-hospital and --batch-size must be positive")
        if o["image_size"] < 16 or o["width"] < 1 or o["node_batch_size"] < 0 or not o["learning_rate"] > 0:
            raise CommandError("--image-size must be at least 16, --width at least 1, --node-batch-size 0 (from "
                               "--batch-size) or more, and --learning-rate above 0")
        check_seed_options(per_hospital=o["per_hospital"], alpha=o["alpha"])
        node_batch = o["node_batch_size"] or max(1, round(o["batch_size"] / o["hospitals"]))
        size, width = o["image_size"], o["width"]
        held_out = {split: shared_split(split, image_size=size) for split in splits}
        # The hospitals' shares do not depend on the seed: as in federation_experiment, a seed fixes the
        # initial weights and the shuffling, not which cases a hospital holds.
        shares_of = {partition: simulated_hospital_shares(partition=partition, hospitals=o["hospitals"],
                                                          per_hospital=o["per_hospital"], image_size=size,
                                                          alpha=o["alpha"])
                     for partition in partitions}

        def score(model) -> dict:
            return {split: learning.evaluate(model, learning.MODEL_CLASSIFIER, x, y) for split, (x, y) in held_out.items()}

        results = []
        for seed in seeds:
            for partition in partitions:
                shares = shares_of[partition]
                if "centralised" in rows_wanted:
                    x = np.concatenate([share[0] for share in shares])
                    y = np.concatenate([share[1] for share in shares])
                    started = time.monotonic()
                    model, _ = learning.train_centralised(
                        x, y, image_size=size, width=width, epochs=o["rounds"] * o["local_epochs"],
                        batch_size=o["batch_size"], peak_lr=o["learning_rate"],
                        logit_adjustment=o["logit_adjustment"], seed=seed)
                    results.append(("centralised", partition, seed, score(model), time.monotonic() - started))
                    self._row(results[-1], splits)
                if "fedavg" in rows_wanted:
                    started = time.monotonic()
                    with tqdm(total=o["rounds"], desc=f"FedAvg {partition} seed {seed}", unit="round") as bar:
                        model = simulate_fedavg(
                            shares, image_size=size, width=width, rounds=o["rounds"], local_epochs=o["local_epochs"],
                            batch_size=node_batch, peak_lr=o["learning_rate"], server_step=o["server_step"],
                            logit_adjustment=o["logit_adjustment"], seed=seed, proximal_mu=o["proximal_mu"],
                            after_round=lambda *_: bar.update())
                    results.append(("FedAvg", partition, seed, score(model), time.monotonic() - started))
                    self._row(results[-1], splits)
        self.stdout.write("\n" + _table(results, splits))
        for line in _gaps(results, splits):
            self.stdout.write(line)

    def _row(self, result, splits):
        kind, partition, seed, scores, wall = result
        self.stdout.write(f"{kind}, {partition}, seed {seed}: " + ", ".join(
            f"{split} accuracy {scores[split]['accuracy']:.3f}" for split in splits) + f" in {wall:.0f} s")


def _table(results, splits) -> str:
    lines = ["| setting | " + " | ".join(f"{s} accuracy | {s} macro-F1" for s in splits) + " | wall time |",
             "|---|" + "---|---|" * len(splits) + "---|"]
    for kind, partition, seed, scores, wall in results:
        cells = " | ".join(f"{100 * scores[s]['accuracy']:.1f} % | {100 * scores[s]['macro_f1']:.1f} %" for s in splits)
        lines.append(f"| {kind}, {partition}, seed {seed} | {cells} | {wall:.0f} s |")
    return "\n".join(lines)


def _gaps(results, splits) -> list[str]:
    """Centralised minus FedAvg accuracy per partition and split, per seed and on average."""
    lines = []
    partitions = dict.fromkeys(r[1] for r in results)
    for partition in partitions:
        for split in splits:
            central = {r[2]: r[3][split]["accuracy"] for r in results if r[1] == partition and r[0] == "centralised"}
            federated = {r[2]: r[3][split]["accuracy"] for r in results if r[1] == partition and r[0] == "FedAvg"}
            gaps = {seed: 100 * (central[seed] - federated[seed]) for seed in central if seed in federated}
            if gaps:
                lines.append(gap_line(f"{partition}, {split}", gaps))
    return lines
