"""Centralised training against FedAvg over three hospitals (IID and label-skewed), on the same budget.

Same data (the three hospitals' reviewed cases, read through the nodes' own reader: each partition's
federated row has a centralised row trained on the union of the same hospitals' cases), same network,
same initial weights, same local training function, same number of passes over the data (rounds x local
epochs = centralised epochs), same validation split of the coordinator. The federated runs go through the real deployment:
a SuperLink, a SuperNode per hospital with its warm executor, the ServerApp, the platform's task loop.
"""

import json
import statistics
import time
from dataclasses import asdict, dataclass, field

from django.conf import settings

from federation import daemons
from federation.models import FederatedRun, RunStatus


@dataclass
class Row:
    setting: str
    accuracy: float
    macro_f1: float
    rounds: int
    wall_s: float
    bytes_per_round: float = 0.0
    round_s: float = 0.0
    node_compute_s: float = 0.0
    overhead_s: float = 0.0
    overhead_pct: float = 0.0
    notes: str = ""
    per_round: list = field(default_factory=list)
    seed: int = 0
    partition: str = ""


def experiment_hospitals(partition: str, count: int):
    from hospitals.models import Hospital
    from hospitals.services import create_hospital, update_hospital_settings

    hospitals = []
    for n in range(1, count + 1):
        slug = f"exp-{partition}-{n}"
        hospital = Hospital.objects.filter(slug=slug).first() or create_hospital(slug=slug, name=f"Experiment {slug}")
        if not hospital.federation_opt_in:
            update_hospital_settings(hospital=hospital, actor=None, federation_opt_in=True)
        hospitals.append(hospital)
    return hospitals


def centralised(setting: str, hospitals, *, x_val, y_val, image_size, width, epochs, batch_size, learning_rate,
                logit_adjustment, log, seed: int = 0) -> Row:
    """One model trained on the union of `hospitals`' cases: what their federation could at best reach."""
    import numpy as np

    from federation import learning
    from federation.datasets import hospital_training_set

    parts = [hospital_training_set(h, kind="classifier", image_size=image_size) for h in hospitals]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    started = time.monotonic()
    model, stats = learning.train_centralised(x, y, image_size=image_size, width=width, epochs=epochs,
                                              batch_size=batch_size, peak_lr=learning_rate,
                                              logit_adjustment=logit_adjustment, seed=seed)
    wall = time.monotonic() - started
    result = learning.evaluate(model, "classifier", x_val, y_val)
    log(f"{setting}: {len(x)} cases, {epochs} epochs in {stats['seconds']:.0f} s -> accuracy "
        f"{result['accuracy']:.3f}")
    return Row(setting, result["accuracy"], result["macro_f1"], 0, wall, notes=f"{len(x)} cases, {epochs} epochs",
               seed=seed)


def federated(setting: str, hospitals, *, home, image_size, width, rounds, local_epochs, batch_size, warm=True,
              validation_per_class=0, learning_rate, logit_adjustment, server_step, log, seed: int = 0) -> Row:
    from federation.tasks import follow_run

    port = daemons.free_port(range(8300, 8400))
    address = f"127.0.0.1:{port}"
    started_daemons = [daemons.start_superlink(home, port=port)]
    try:
        for hospital in hospitals:
            started_daemons.append(daemons.start_node(home, hospital_slug=hospital.slug, superlink=address,
                                                      runtime_port=daemons.free_port(range(8300, 8400)), warm=warm))
        run = FederatedRun.objects.create(num_rounds=rounds, local_epochs=local_epochs, batch_size=batch_size,
                                          image_size=image_size, model_width=width, min_nodes=len(hospitals),
                                          validation_per_class=validation_per_class, learning_rate=learning_rate,
                                          logit_adjustment=logit_adjustment, server_step=server_step, seed=seed)
        run.hospitals.set(hospitals)
        started = time.monotonic()
        status = follow_run(run.pk, poll_s=1.0, home=home)
        wall = time.monotonic() - started
    finally:
        for daemon in reversed(started_daemons):
            daemon.stop()
    run.refresh_from_db()
    if status != RunStatus.COMPLETED:
        raise RuntimeError(f"{setting}: run {run.pk} {status}: {run.failure_reason}")
    rows = list(run.rounds.order_by("number"))
    per_round = [{"round": r.number, "duration_s": r.duration_s, "node_compute_s": r.node_compute_s,
                  "server_eval_s": r.server_eval_s, "accuracy": r.global_accuracy,
                  "bytes": r.bytes_sent + r.bytes_received} for r in rows]
    overheads = [r.duration_s - (r.node_compute_s or 0) - (r.server_eval_s or 0) for r in rows]
    durations = [r.duration_s for r in rows]
    final = run.final_metrics
    log(f"{setting}: run {run.pk} accuracy {final['accuracy']:.3f} in {wall:.0f} s")
    return Row(setting, final["accuracy"], final["macro_f1"], len(rows), wall,
               bytes_per_round=statistics.mean(p["bytes"] for p in per_round),
               round_s=statistics.mean(durations), node_compute_s=statistics.mean(r.node_compute_s or 0 for r in rows),
               overhead_s=statistics.mean(overheads),
               overhead_pct=100 * sum(overheads) / sum(durations), per_round=per_round, seed=seed,
               notes=f"run {run.pk}, {'warm executor' if warm else 'Flower default: new ClientApp per message'}")


def table(rows: list[Row]) -> str:
    lines = ["| setting | val. accuracy | val. macro-F1 | rounds | wall time | bytes/round | round | node compute "
             "| overhead/round |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        fed = r.rounds > 0
        lines.append(
            f"| {r.setting} | {100 * r.accuracy:.1f} % | {100 * r.macro_f1:.1f} % | {r.rounds or '-'} | {r.wall_s:.0f} s | "
            + (f"{r.bytes_per_round / 1e6:.2f} MB | {r.round_s:.1f} s | {r.node_compute_s:.1f} s | "
               f"{r.overhead_s:.1f} s ({r.overhead_pct:.1f} %) |" if fed else "- | - | - | - |"))
    return "\n".join(lines)


def gap_summary(rows: list[Row]) -> list[str]:
    """Per partition: centralised minus federated accuracy for each seed that has both rows, and their mean."""
    lines = []
    for partition in dict.fromkeys(r.partition for r in rows if r.partition):
        central = {r.seed: r for r in rows if r.partition == partition and r.rounds == 0}
        federated = {r.seed: r for r in rows if r.partition == partition and r.rounds > 0}
        gaps = {seed: 100 * (central[seed].accuracy - federated[seed].accuracy)
                for seed in central if seed in federated}
        if gaps:
            lines.append(gap_line(partition, gaps))
    return lines


def gap_line(label: str, gaps: dict[int, float]) -> str:
    """One summary line: the gap in points per seed, its mean and, over several seeds, its spread."""
    spread = f" ± {statistics.stdev(gaps.values()):.1f} (sd)" if len(gaps) > 1 else ""
    return (f"{label}: centralised minus FedAvg accuracy {statistics.mean(gaps.values()):.1f} points"
            f"{spread} over {len(gaps)} seed(s): "
            + ", ".join(f"seed {seed} {gap:.1f}" for seed, gap in sorted(gaps.items())))


def save(rows: list[Row], config: dict) -> str:
    out = settings.VAR_DIR / "federation" / "experiment.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": config, "rows": [asdict(r) for r in rows]}, indent=2))
    return str(out)
