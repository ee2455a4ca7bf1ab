"""Centralised training vs FedAvg with three hospitals (IID and label-skewed) on the same budget; prints a table.

Seeds the experiment hospitals (exp-iid-1..3, exp-label-skew-1..3) from the shared training split, trains
centrally on each partition's union of cases, then runs FedAvg over real Flower daemons on loopback.
"""

import argparse

from django.core.management.base import BaseCommand, CommandError

from federation import conf, experiment
from federation.learning import DEFAULT_SERVER_STEP
from federation.management.commands.seed_federation import check_seed_options, seed_partition


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--per-hospital", type=int, default=600)
        parser.add_argument("--hospitals", type=int, default=3)
        parser.add_argument("--image-size", type=int, default=96)
        parser.add_argument("--width", type=int, default=16)
        parser.add_argument("--rounds", type=int, default=6)
        parser.add_argument("--local-epochs", type=int, default=1)
        parser.add_argument("--batch-size", type=int, default=32, help="centralised batch size")
        parser.add_argument("--node-batch-size", type=int, default=0,
                            help="each node's batch size; 0: batch size / hospitals, the same global batch")
        parser.add_argument("--learning-rate", type=float, default=6e-3,
                            help="peak learning rate of centralised training and of the nodes (default chosen on "
                                 "the calibration split at 64 px, width 16: see docs/federation.md)")
        parser.add_argument("--logit-adjustment", action=argparse.BooleanOptionalAction, default=True,
                            help="train with the logit-adjusted loss for each training set's own class mix "
                                 "(centralised and nodes alike)")
        parser.add_argument("--server-step", type=float, default=DEFAULT_SERVER_STEP,
                            help="FedAvg's server learning rate: the global model moves this many times the nodes' "
                                 "averaged update (1: the plain average)")
        parser.add_argument("--alpha", type=float, default=0.5)
        parser.add_argument("--validation-per-class", type=int, default=0, help="0: the whole validation split")
        parser.add_argument("--seeds", default="0",
                            help="comma-separated seeds (initial weights and shuffling); each seed runs every row "
                                 "but 'cold', and the gaps are summarised over them")
        parser.add_argument("--rows", default="centralised,iid,label-skew,cold",
                            help="which rows to run; 'cold' is one round with Flower's default ClientApp processes")

    def handle(self, *args, **o):
        from federation.datasets import coordinator_validation_set

        wanted = o["rows"].split(",")
        unknown = sorted(set(wanted) - {"centralised", "iid", "label-skew", "cold"})
        if unknown:
            raise CommandError(f"--rows takes centralised, iid, label-skew and cold, not {', '.join(unknown)}")
        for option in ("hospitals", "image_size", "width", "rounds", "local_epochs", "batch_size"):
            if o[option] < 1:
                raise CommandError(f"--{option.replace('_', '-')} must be at least 1, not {o[option]}")
        if o["node_batch_size"] < 0 or o["validation_per_class"] < 0:
            raise CommandError("--node-batch-size and --validation-per-class must be 0 or more")
        check_seed_options(per_hospital=o["per_hospital"], alpha=o["alpha"])
        try:
            seeds = [int(seed) for seed in o["seeds"].split(",")]
        except ValueError:
            raise CommandError(f"--seeds takes comma-separated whole numbers, not {o['seeds']!r}") from None
        log = lambda message: self.stdout.write(message)  # noqa: E731
        budget = {"image_size": o["image_size"], "width": o["width"], "logit_adjustment": o["logit_adjustment"]}
        # FedAvg averages the nodes' steps: with n nodes at batch B/n, one averaged step is, to first
        # order, one centralised step at batch B, and an epoch has as many of them. At batch B per node
        # the federated model would take n times fewer (and n times larger) steps on the same budget.
        node_batch = o["node_batch_size"] or max(1, round(o["batch_size"] / o["hospitals"]))
        federated_budget = {**budget, "batch_size": node_batch, "local_epochs": o["local_epochs"],
                            "validation_per_class": o["validation_per_class"], "learning_rate": o["learning_rate"],
                            "server_step": o["server_step"]}
        x_val, y_val = coordinator_validation_set(kind="classifier", image_size=o["image_size"],
                                                  limit_per_class=o["validation_per_class"])
        log(f"validation: {len(x_val)} images")
        hospitals = {}
        partitions = [p for p in ("iid", "label-skew")
                      if p in wanted or (p == "iid" and {"centralised", "cold"} & set(wanted))]
        for partition in partitions:
            hospitals[partition] = experiment.experiment_hospitals(partition, o["hospitals"])
            counts = seed_partition(hospitals[partition], partition=partition, per_hospital=o["per_hospital"],
                                    alpha=o["alpha"])
            for slug, counter in counts.items():
                log(f"  {slug}: " + ", ".join(f"{k}={v}" for k, v in sorted(counter.items())))
        rows = []
        home = conf.federation_home() / "experiment"
        for seed in seeds:
            label = f", seed {seed}" if len(seeds) > 1 else ""
            for partition in partitions:
                # The yardstick of a partition's federation is one model trained on the union of the same
                # hospitals' cases: under label skew that union has its own size and class mix.
                if "centralised" in wanted:
                    rows.append(experiment.centralised(
                        f"centralised, {partition} hospitals' cases{label}", hospitals[partition], x_val=x_val,
                        y_val=y_val, epochs=o["rounds"] * o["local_epochs"], batch_size=o["batch_size"],
                        learning_rate=o["learning_rate"], log=log, seed=seed, **budget))
                    rows[-1].partition = partition
            for partition in partitions:
                if partition in wanted:
                    rows.append(experiment.federated(f"FedAvg, {partition}{label}", hospitals[partition], home=home,
                                                     rounds=o["rounds"], log=log, seed=seed, **federated_budget))
                    rows[-1].partition = partition
        if "cold" in wanted:
            rows.append(experiment.federated("FedAvg, iid, Flower default processes", hospitals["iid"], home=home,
                                             rounds=1, warm=False, log=log, seed=seeds[0], **federated_budget))
        self.stdout.write("\n" + experiment.table(rows))
        for line in experiment.gap_summary(rows):
            self.stdout.write(line)
        self.stdout.write(f"\nsaved to {experiment.save(rows, o)}")
