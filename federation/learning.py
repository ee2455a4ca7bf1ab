"""The model side of federated learning: what a node trains and what the coordinator evaluates.

A thin layer over diagnostics.ml (the one model, training and evaluation code): it picks the network
for a run and fixes the local-training options that federated averaging needs (FedProx's proximal term
is an option of that loop: `training.ProximalAdamW`).
"""

import time

import numpy as np

MODEL_CLASSIFIER = "classifier"
MODEL_SEGMENTER = "segmenter"
# The shared training loop's peak learning rate (diagnostics.ml.training), which centralised training uses.
DEFAULT_PEAK_LR = 2e-3
# The run's schedule warms up over this share of it, and over at least one epoch (learning.schedule_warmup).
WARMUP_SHARE = 0.1
WARMUP_MIN_EPOCHS = 1.0
# FedAvg's server learning rate: the global model moves this many times the nodes' averaged update
# (server_app.with_server_step). Chosen in-process on the calibration split: docs/federation.md.
DEFAULT_SERVER_STEP = 1.5


def build_model(kind: str, image_size: int, width: int, seed: int | None = None):
    """The network of a run; with `seed`, its initial weights are the same every time."""
    from diagnostics.ml import networks

    if seed is not None:
        import keras

        keras.utils.set_random_seed(seed)

    if kind == MODEL_SEGMENTER:
        return networks.build_segmenter(input_size=image_size, base_filters=width)
    return networks.build_classifier(input_size=image_size, width=width)


def pack_weights(model) -> np.ndarray:
    """The model's weights as one flat float32 vector, the form they travel in.

    Flower stores and moves every array of a message as a separate object, one request each between
    SuperLink, ServerApp and SuperNode. A network's 70-odd weight tensors made that several seconds per
    exchange at the demo's sizes; one vector is one object. Averaging, FedAdam's update and DP
    clipping are element-wise or over the global norm, so they give the same result on the vector.
    """
    return np.concatenate([np.ravel(w).astype(np.float32) for w in model.get_weights()])


def trainable_mask(model) -> np.ndarray:
    """Which entries of the model's `pack_weights` vector are trainable (the rest: BatchNorm statistics)."""
    return np.concatenate([np.full(int(np.prod(v.shape)), bool(v.trainable)) for v in model.weights])


def unpack_weights(model, flat: np.ndarray) -> None:
    """Load a vector made by `pack_weights` on the same architecture into `model`."""
    shapes = [w.shape for w in model.get_weights()]
    sizes = [int(np.prod(shape)) for shape in shapes]
    flat = np.asarray(flat)
    if flat.ndim != 1 or flat.size != sum(sizes):
        raise ValueError(f"weights vector of shape {flat.shape} does not fit this network ({sum(sizes)} values)")
    parts = np.split(flat, np.cumsum(sizes)[:-1])
    model.set_weights([part.reshape(shape) for part, shape in zip(parts, shapes)])


def unpack_arrays(model, arrays: list[np.ndarray]) -> None:
    """Load the arrays of a message's weights record (one `pack_weights` vector) into `model`."""
    if len(arrays) != 1:
        raise ValueError(f"expected the weights as one vector, got {len(arrays)} arrays")
    unpack_weights(model, arrays[0])


def round_window(server_round: int, num_rounds: int) -> tuple[float, float]:
    """The slice of the run's learning-rate schedule that round `server_round` (1-based) of `num_rounds` runs."""
    if server_round < 1 or num_rounds < 1:
        return 0.0, 1.0
    server_round = min(server_round, num_rounds)
    return (server_round - 1) / num_rounds, server_round / num_rounds


def round_seed(run_seed: int, server_round: int) -> int:
    """The seed of a node's shuffling and augmentation in one round: new each round, and each run seed."""
    return run_seed * 1_000_003 + server_round


def schedule_warmup(total_epochs: float) -> float:
    """The share of a run's learning-rate schedule spent warming up: a tenth of it, at least one epoch.

    One schedule spans all rounds (`round_window`), and so does its warm-up: with 20 rounds of one local
    epoch, the first two rounds ramp the rate up from nearly zero. From random weights, Adam's first
    steps at the peak rate are the largest a node takes, and the nodes' models part most there. Measured
    in-process with one seed (docs/federation.md): a one-epoch warm-up lifted FedAvg by 2.0 points and
    centralised training by 0.8; two epochs of 20 lifted FedAvg with the server step by another 1.0 and
    left centralised training where it was. A second seed showed a smaller gain.
    """
    if total_epochs <= 0:
        return 0.0
    return min(1.0, max(WARMUP_SHARE, WARMUP_MIN_EPOCHS / total_epochs))


def train_local(model, kind: str, x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int,
                proximal_mu: float = 0.0, seed: int = 0, schedule_window: tuple[float, float] = (0.0, 1.0),
                warmup: float = 0.0, peak_lr: float = DEFAULT_PEAK_LR,
                resume_optimizer: list[np.ndarray] | None = None, logit_adjustment: bool = False) -> dict:
    """Train `model` in place on one hospital's cases; returns loss, accuracy (or dice) and seconds.

    The shared loop's weight average (EMA) and per-fit warm-up are switched off: a node trains only an
    epoch or two per round, an average over so few steps would hand back nearly the weights it was sent,
    and a warm-up in every round would idle each round's first steps.
    `schedule_window` is this round's slice of the run's cosine learning-rate schedule (`round_window`),
    so the rounds together follow the schedule centralised training runs in one go, instead of decaying
    to nearly zero and jumping back to the peak every round; `warmup` is that schedule's warm-up, as a
    share of it (`schedule_warmup`).

    `resume_optimizer` is the optimizer state this node kept from its previous round; the returned
    stats carry the new one under "optimizer_state". It stays on the node: Adam's moments are sums over
    the node's own gradients, and only weights may leave it.

    `proximal_mu` > 0 is FedProx: local training is pulled towards the weights the round started from.

    `logit_adjustment` trains the classifier with the logit-adjusted loss for this node's own class mix
    (`training.logit_adjusted_loss`), so hospitals with different case mixes train one class-balanced
    model; the mix itself stays on the node.
    """
    from diagnostics.ml import training

    started = time.monotonic()
    common = dict(batch_size=batch_size, ema=False, warmup_epochs=0.0, seed=seed, log=lambda *_: None,
                  schedule_window=schedule_window, schedule_warmup=warmup, peak_lr=peak_lr,
                  resume_optimizer=resume_optimizer, proximal_mu=proximal_mu)
    prior = None
    if logit_adjustment and kind != MODEL_SEGMENTER:
        prior = training.smoothed_class_prior(y, model.output_shape[-1])
    if kind == MODEL_SEGMENTER:
        history = training.train_segmenter(model, x, y, epochs, **common)
        stats = {"loss": float(history.history["loss"][-1]), "optimizer_state": training.optimizer_state(model)}
    else:
        history = training.train_classifier(model, x, y, epochs, class_prior=prior, **common)
        stats = {"loss": float(history.history["loss"][-1]), "accuracy": float(history.history["accuracy"][-1]),
                 "optimizer_state": training.optimizer_state(model)}
    recalibrate_batchnorm(model, x)
    stats["seconds"] = time.monotonic() - started
    return stats


def train_round(model, kind: str, x: np.ndarray, y: np.ndarray, *, server_round: int, num_rounds: int,
                local_epochs: int, batch_size: int, run_seed: int = 0, peak_lr: float = DEFAULT_PEAK_LR,
                proximal_mu: float = 0.0, resume_optimizer: list[np.ndarray] | None = None,
                logit_adjustment: bool = False) -> dict:
    """A node's local training in round `server_round` of a run: `train_local` on the round's slice of the
    run's schedule, with the run's warm-up and the round's seed.

    The one place that turns a round into training options, for a node's train message
    (federation.client_app) and the in-process simulation (federation.simulation) alike, so the two
    cannot drift apart.
    """
    return train_local(model, kind, x, y, epochs=local_epochs, batch_size=batch_size, proximal_mu=proximal_mu,
                       seed=round_seed(run_seed, server_round),
                       schedule_window=round_window(server_round, num_rounds),
                       warmup=schedule_warmup(num_rounds * local_epochs), peak_lr=peak_lr,
                       resume_optimizer=resume_optimizer, logit_adjustment=logit_adjustment)


def train_centralised(x: np.ndarray, y: np.ndarray, *, image_size: int, width: int, epochs: int, batch_size: int,
                      peak_lr: float, logit_adjustment: bool, seed: int = 0):
    """The yardstick of a federation: one classifier trained on the union of its hospitals' cases with the
    nodes' training function, schedule and warm-up, from the same seeded initial weights; (model, stats)."""
    model = build_model(MODEL_CLASSIFIER, image_size, width, seed=seed)
    stats = train_local(model, MODEL_CLASSIFIER, x, y, epochs=epochs, batch_size=batch_size, seed=seed,
                        warmup=schedule_warmup(epochs), peak_lr=peak_lr, logit_adjustment=logit_adjustment)
    return model, stats


def apply_server_step(before: np.ndarray, averaged: np.ndarray, step: float, trainable: np.ndarray) -> np.ndarray:
    """The global model after a server step (server_app.with_server_step): `step` times the averaged update
    on the trainable entries of a `pack_weights` vector; the plain average for BatchNorm's statistics,
    which are not updates (extrapolated, a variance could turn negative)."""
    return np.where(trainable, before + step * (averaged - before), averaged).astype(averaged.dtype)


def recalibrate_batchnorm(model, x: np.ndarray, batch_size: int = 64, max_batches: int = 16) -> None:
    """Set BatchNorm's moving statistics to the mean over a few batches of `x` under the trained weights.

    A node trains for an epoch or two per round: with Keras' momentum of 0.99, a few dozen steps leave
    the moving mean and variance far from the data's (measured: 51 % training accuracy but 34 % in
    inference mode after 3 epochs on 1500 images). A cumulative average over forward passes fixes that
    without changing a trainable weight.
    """
    import keras

    layers = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers or not len(x):
        return
    saved = [layer.momentum for layer in layers]
    images = (x[..., None] if x.ndim == 3 else x).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(images))
    try:
        for k, start in enumerate(range(0, min(len(images), batch_size * max_batches), batch_size), start=1):
            for layer in layers:
                layer.momentum = (k - 1) / k  # k-th batch gets weight 1/k: a plain mean over batches
            model(images[order[start:start + batch_size]], training=True)
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum


def evaluate(model, kind: str, x: np.ndarray, y: np.ndarray) -> dict:
    """Classifier: loss, accuracy, macro_f1. Segmenter: loss, dice, iou."""
    from diagnostics.ml import training

    if kind == MODEL_SEGMENTER:
        return training.evaluate_segmenter(model, x, y)
    return training.evaluate_classifier(model, x, y)
