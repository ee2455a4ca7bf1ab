"""Training and evaluation loops for the classifier and the segmenter.

Stable API (used by the ``train_model`` command and by the federated-learning client):

- ``train_classifier(model, x, y, epochs, batch_size=64, ...) -> keras.callbacks.History``
- ``evaluate_classifier(model, x, y) -> {"loss", "accuracy", "macro_f1"}``
- ``train_segmenter(model, x, masks, epochs, batch_size=16, ...) -> History``
- ``evaluate_segmenter(model, x, masks) -> {"loss", "dice", "iou"}``
- weights travel with Keras' own ``model.get_weights()`` / ``model.set_weights(list)``.

``x`` is uint8 (N, S, S) or (N, S, S, 1) from ``preprocess_slice``; ``y`` integer class indices; masks
bool/0-1 (N, S, S). Training uses in-graph augmentation, AdamW with a warm-up and cosine decay, and an
exponential moving average of the weights (evaluated and saved in place of the raw weights). With
``time_budget_s`` the cosine schedule runs on wall-clock time and training stops when it is spent, so
a hard deadline still ends on a fully decayed learning rate.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .augment import augment_batch
from .inference import clean_mask
from .metrics import dice_per_slice


def _with_channel(x: np.ndarray) -> np.ndarray:
    return x[..., None] if x.ndim == 3 else x


def cosine_factor(progress: float, final_fraction: float = 0.01) -> float:
    """Share of the peak learning rate at `progress` (0..1) through a cosine decay to `final_fraction`."""
    return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_ramp(progress: float, warmup_fraction: float) -> float:
    """Share of the rate a linear warm-up over the first ``warmup_fraction`` of a schedule allows at ``progress``."""
    return min(1.0, progress / warmup_fraction) if warmup_fraction > 0 else 1.0


class WarmupCosine(keras.callbacks.Callback):
    """Per-step learning rate: linear warm-up, then cosine decay to ``final_fraction`` of the peak.

    With ``time_budget_s`` the schedule runs on wall-clock time instead of steps: progress is the share
    of the budget spent, and training stops (after the current batch) when the budget is used up. On a
    shared CPU the speed changes from minute to minute; a time-based schedule still ends on a fully
    decayed learning rate, which an epoch count fixed in advance would not.
    """

    def __init__(self, peak_lr: float, epochs: int, steps_per_epoch: int, warmup_epochs: float = 2.0,
                 final_fraction: float = 0.01, time_budget_s: float | None = None, log=print,
                 window: tuple[float, float] = (0.0, 1.0), warmup_fraction: float = 0.0):
        super().__init__()
        # A fit can be one slice of a longer schedule: a federated round r of R runs the part of the
        # cosine between (r-1)/R and r/R, so the rounds together follow the centralised schedule.
        self.window = window
        # A warm-up measured on that whole schedule (a share of it), so that it too can span fits;
        # `warmup_epochs` is the warm-up of this one fit.
        self.warmup_fraction = warmup_fraction
        self.peak_lr, self.epochs, self.steps_per_epoch = peak_lr, epochs, steps_per_epoch
        self.warmup_steps = int(warmup_epochs * steps_per_epoch)
        self.final_fraction, self.time_budget_s, self.log = final_fraction, time_budget_s, log
        self.step = 0
        self.started = None

    def on_train_begin(self, logs=None):
        self.started = time.monotonic()

    def _progress(self, after_step: bool = False) -> float:
        if self.time_budget_s:
            return min(1.0, (time.monotonic() - self.started) / self.time_budget_s)
        return min(1.0, (self.step + after_step) / max(1, self.epochs * self.steps_per_epoch))

    def _lr(self) -> float:
        if self.step < self.warmup_steps:
            return self.peak_lr * (self.step + 1) / self.warmup_steps
        start, end = self.window
        progress = start + (end - start) * self._progress()
        # The ramp is measured at the end of the step, so that the very first step is small but not zero.
        ramp = warmup_ramp(start + (end - start) * self._progress(after_step=True), self.warmup_fraction)
        return self.peak_lr * ramp * cosine_factor(progress, self.final_fraction)

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate.assign(self._lr())
        self.step += 1

    def on_train_batch_end(self, batch, logs=None):
        if self.time_budget_s and self._progress() >= 1.0:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if not self.time_budget_s and epoch + 1 >= self.epochs:
            self.model.stop_training = True
        if self.time_budget_s and self._progress() >= 1.0:
            self.model.stop_training = True
            self.log(f"time budget of {self.time_budget_s:.0f}s spent after {epoch + 1} epochs")


class ProgressLine(keras.callbacks.Callback):
    """One line per epoch with the metrics and elapsed time (Keras' own bar floods log files)."""

    def __init__(self, log=print):
        super().__init__()
        self.log = log
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        shown = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()) if k != "learning_rate")
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.log(f"epoch {epoch + 1} {shown} lr={lr:.2e} elapsed={time.monotonic() - self.started:.0f}s")


class ProximalAdamW(keras.optimizers.AdamW):
    """AdamW whose decoupled decay also pulls every weight towards an anchor: FedProx's proximal term.

    FedProx (Li et al., MLSys 2020) adds mu/2 * ||w - w_round_start||^2 to a node's loss so its local
    training cannot wander far from the global model it was sent. Here the term's gradient,
    mu * (w - anchor), is applied the way AdamW applies its weight decay: outside Adam's normalisation,
    scaled by the current learning rate. Added to the gradient instead, Adam would rescale it by the
    loss gradient's own magnitude, so mu would mean something different in every layer. It runs inside
    the traced training step, with the same schedule and kept optimizer as plain FedAvg.
    `set_anchor` fixes the anchor (the weights a round starts from) before each fit.
    """

    def __init__(self, proximal_mu: float, **kwargs):
        super().__init__(**kwargs)
        self.proximal_mu = float(proximal_mu)
        self._anchors: list[tf.Variable] | None = None

    def set_anchor(self, variables) -> None:
        values = [keras.ops.convert_to_numpy(v) for v in variables]
        if self._anchors is None:
            # Created before the first trace: a traced step may read variables, not create them.
            self._anchors = [tf.Variable(value, trainable=False) for value in values]
        else:
            for anchor, value in zip(self._anchors, values, strict=True):
                anchor.assign(value)

    def _apply_weight_decay(self, variables):
        super()._apply_weight_decay(variables)
        if not self._anchors:
            return
        for variable in variables:
            anchor = self._anchors[self._get_variable_index(variable)]
            rate = tf.cast(self.learning_rate, variable.dtype) * self.proximal_mu
            variable.assign_sub((variable.value - anchor) * rate)


def _optimizer(peak_lr: float, weight_decay: float, ema: bool, proximal_mu: float = 0.0) -> keras.optimizers.Optimizer:
    options = dict(learning_rate=peak_lr, weight_decay=weight_decay, use_ema=ema,
                   ema_momentum=0.995 if ema else 0.99, ema_overwrite_frequency=None, clipnorm=5.0)
    if proximal_mu > 0:
        return ProximalAdamW(proximal_mu, **options)
    return keras.optimizers.AdamW(**options)


def _anchor_proximal_term(model: keras.Model, proximal_mu: float) -> None:
    """Anchor a FedProx fit at the weights the model holds now, the round's starting point."""
    if proximal_mu > 0:
        model.optimizer.set_anchor(model.trainable_variables)


def optimizer_state(model: keras.Model) -> list[np.ndarray]:
    """The compiled model's optimizer variables (step count, Adam's moments), to resume it in a later fit."""
    return [np.asarray(v.numpy()) for v in model.optimizer.variables]


def _restore_optimizer(model: keras.Model, state: list[np.ndarray] | None) -> None:
    """Give the freshly compiled model's optimizer the variables `optimizer_state` returned earlier.

    A federated node trains one short fit per round; without this its Adam moments (and their bias
    correction) would start from nothing every round, estimated from a few dozen steps each time.
    """
    if not state:
        return
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    if len(state) != len(optimizer.variables) or any(tuple(v.shape) != tuple(np.shape(s))
                                                     for v, s in zip(optimizer.variables, state)):
        raise ValueError("optimizer state does not fit this network and optimizer")
    for variable, value in zip(optimizer.variables, state):
        variable.assign(value)


def _keeps_traced_step(model: keras.Model, setup: tuple, ema: bool, resume_optimizer) -> bool:
    """Whether a fit may reuse the model's compiled training step instead of compiling it again.

    Tracing the step takes several seconds (about 7 s for the federation's small classifier on two
    cores), far longer than an epoch of one hospital's cases; compiling again retraces it. A model fitted
    again with the same loss and optimizer settings, continuing its optimizer (`resume_optimizer` given:
    its variables are assigned below, so the fit starts from exactly that state either way), computes the
    same thing with the step it already has. Not with weight averaging (EMA), whose variables belong to
    one fit.
    """
    return (not ema and resume_optimizer is not None and getattr(model, "optimizer", None) is not None
            and getattr(model, "_neurofed_training_setup", None) == setup)


def _callbacks(peak_lr, epochs, steps, warmup_epochs, time_budget_s, checkpoint_path, monitor, mode, ema, log,
               window=(0.0, 1.0), warmup_fraction=0.0):
    callbacks = [WarmupCosine(peak_lr, epochs, steps, warmup_epochs, time_budget_s=time_budget_s, log=log,
                              window=window, warmup_fraction=warmup_fraction)]
    if ema:
        # Validation and checkpoints see the averaged weights; training continues on the raw ones.
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    if checkpoint_path:
        Path(checkpoint_path).parent.mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.ModelCheckpoint(str(checkpoint_path), monitor=monitor, mode=mode,
                                                         save_best_only=True, save_weights_only=True))
    callbacks.append(ProgressLine(log))
    return callbacks


def train_classifier(model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int = 64, *,
                     validation: tuple[np.ndarray, np.ndarray] | None = None, peak_lr: float = 2e-3,
                     weight_decay: float = 5e-4, warmup_epochs: float = 1.0, augment: bool = True,
                     ema: bool = True, time_budget_s: float | None = None,
                     checkpoint_path: str | Path | None = None, seed: int = 0, log=print,
                     verbose: int = 0, schedule_window: tuple[float, float] = (0.0, 1.0),
                     schedule_warmup: float = 0.0, resume_optimizer: list[np.ndarray] | None = None,
                     class_prior: np.ndarray | None = None, proximal_mu: float = 0.0) -> keras.callbacks.History:
    """Fit ``model`` (logits output) on uint8 images ``x`` and class indices ``y``; compiles it.

    ``checkpoint_path`` (``*.weights.h5``) keeps the weights with the best validation accuracy. After
    training with ``ema`` the model holds the averaged weights. ``resume_optimizer`` (from
    ``optimizer_state`` after an earlier fit of the same network) continues that optimizer.
    ``schedule_window`` is the slice of a longer cosine schedule this fit runs, and ``schedule_warmup``
    that schedule's linear warm-up as a share of it (see ``WarmupCosine``).
    ``class_prior`` trains with the logit-adjusted loss (``logit_adjusted_loss``). ``proximal_mu`` > 0
    adds FedProx's proximal term towards the weights the model holds when the fit starts (``ProximalAdamW``).
    """
    tf.random.set_seed(seed)
    x = _with_channel(x)
    dataset = (tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32)))
               .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
               .batch(batch_size, drop_remainder=len(x) > batch_size))
    if augment:
        dataset = dataset.map(lambda a, b: (augment_batch(a), b), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = dataset.map(lambda a, b: (tf.cast(a, tf.float32), b))
    dataset = dataset.prefetch(2)
    prior_key = None if class_prior is None else tuple(np.asarray(class_prior).tolist())
    setup = ("classifier", peak_lr, weight_decay, prior_key, proximal_mu)
    if not _keeps_traced_step(model, setup, ema, resume_optimizer):
        model.compile(optimizer=_optimizer(peak_lr, weight_decay, ema, proximal_mu),
                      loss=classification_loss(class_prior),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        model._neurofed_training_setup = setup
    _restore_optimizer(model, resume_optimizer)
    _anchor_proximal_term(model, proximal_mu)
    steps = max(1, len(x) // batch_size)
    validation_data = None
    if validation is not None:
        validation_data = (_with_channel(validation[0]).astype(np.float32), validation[1].astype(np.int32))
    monitor = "val_accuracy" if validation is not None else "accuracy"
    history = model.fit(dataset, epochs=epochs if not time_budget_s else 10_000, validation_data=validation_data,
                        callbacks=_callbacks(peak_lr, epochs, steps, warmup_epochs, time_budget_s, checkpoint_path,
                                             monitor, "max", ema, log, schedule_window, schedule_warmup),
                        verbose=verbose)
    if ema:
        model.optimizer.finalize_variable_values(model.trainable_variables)
    return history


def smoothed_class_prior(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Class frequencies of ``y`` with one pseudo-count per class, so an absent class keeps a finite prior."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=num_classes).astype(np.float64) + 1.0
    return counts / counts.sum()


def classification_loss(class_prior: np.ndarray | None = None):
    """Cross-entropy on logits; logit-adjusted for ``class_prior`` when one is given."""
    if class_prior is None:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return logit_adjusted_loss(class_prior)


def logit_adjusted_loss(prior: np.ndarray):
    """Cross-entropy on ``logits + log(prior)`` (Menon et al., ICLR 2021; FedLC, Zhang et al., ICML 2022).

    The network's own logits then model the class-balanced posterior: the training set's class mix is
    carried by the added term and dropped at inference. In a federation each hospital's mix differs
    (a referral centre sees mostly gliomas); trained plainly, each node pulls the shared head towards
    its own mix and the average serves none. A class a node has almost never seen gets a very negative
    term, so that node does not push its logit down either.
    """
    log_prior = tf.constant(np.log(np.asarray(prior, dtype=np.float64)), dtype=tf.float32)
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss(y_true, logits):
        return cross_entropy(y_true, logits + log_prior)

    return loss


def predict_logits(model: keras.Model, x: np.ndarray, batch_size: int = 128) -> np.ndarray:
    x = _with_channel(x).astype(np.float32)
    return np.concatenate([np.asarray(model(x[i:i + batch_size], training=False)) for i in range(0, len(x), batch_size)]) \
        if len(x) else np.zeros((0, model.output_shape[-1]), np.float32)


def evaluate_classifier(model: keras.Model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Cross-entropy, accuracy and macro-F1 of a logits model on preprocessed images."""
    from sklearn.metrics import f1_score

    logits = predict_logits(model, x)
    log_probs = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    predicted = logits.argmax(axis=1)
    return {
        "loss": float(-log_probs[np.arange(len(y)), y].mean()),
        "accuracy": float((predicted == y).mean()),
        "macro_f1": float(f1_score(y, predicted, average="macro", labels=np.arange(logits.shape[1]), zero_division=0)),
    }


def dice_bce_loss(y_true, y_pred_logits):
    """Binary cross-entropy plus one minus the mean soft Dice of the tumour images in the batch.

    Dice is taken per image, not pooled over the batch: pooled, a large glioma outweighs a small
    pituitary tumour a hundred to one and the network learns it can miss the small ones, while the
    figure doctors (and the targets) read is the mean over slices. Images with an empty mask
    (no-tumour images) have no Dice to speak of; the BCE term gives them their gradient.
    """
    y_true = tf.cast(y_true, tf.float32)
    bce = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y_true, logits=y_pred_logits))
    prob = tf.sigmoid(y_pred_logits)
    axes = tf.range(1, tf.rank(y_true))
    intersection = tf.reduce_sum(prob * y_true, axis=axes)
    truth = tf.reduce_sum(y_true, axis=axes)
    dice = (2.0 * intersection + 1.0) / (tf.reduce_sum(prob, axis=axes) + truth + 1.0)
    has_tumour = tf.cast(truth > 0, tf.float32)
    tumour_images = tf.reduce_sum(has_tumour)
    dice_loss = tf.math.divide_no_nan(tf.reduce_sum((1.0 - dice) * has_tumour), tumour_images)
    return bce + dice_loss


class _SliceDiceMetric(keras.metrics.Metric):
    """Mean Dice over slices, as the targets count it: a tumour missed is 0, an empty image answered
    "nothing here" is 1 and one with a false outline is 0. The segmenter's checkpoint is chosen on it."""

    def __init__(self, name="dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total_dice = self.add_weight(name="total_dice", initializer="zeros")
        self.count = self.add_weight(name="count", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        predicted = tf.cast(y_pred > 0.0, tf.float32)
        y_true = tf.cast(y_true > 0.5, tf.float32)
        axes = tf.range(1, tf.rank(y_true))
        intersection = tf.reduce_sum(predicted * y_true, axis=axes)
        total = tf.reduce_sum(predicted, axis=axes) + tf.reduce_sum(y_true, axis=axes)
        dice = tf.where(total > 0, 2.0 * intersection / tf.maximum(total, 1.0), 1.0)
        self.total_dice.assign_add(tf.reduce_sum(dice))
        self.count.assign_add(tf.cast(tf.shape(dice)[0], tf.float32))

    def result(self):
        return tf.math.divide_no_nan(self.total_dice, self.count)


def repeat_slices(x: np.ndarray, masks: np.ndarray, copies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``masks`` with slice ``i`` appearing ``copies[i]`` times in all: the originals in their
    order, then the extra copies. Each copy is augmented differently as it is drawn."""
    copies = np.asarray(copies, int)
    if copies.shape != (len(x),) or (copies < 1).any():
        raise ValueError("copies must hold one count of at least 1 per slice")
    extra = np.repeat(np.arange(len(x)), copies - 1)
    if not len(extra):
        return x, masks
    return np.concatenate([x, x[extra]]), np.concatenate([masks, masks[extra]])


def small_tumour_slices(masks: np.ndarray, max_fraction: float) -> np.ndarray:
    """Which slices hold a tumour covering less than ``max_fraction`` of the image.

    Mean Dice counts a missed small tumour as much as a missed large one, yet small tumours are a
    minority of the training slices and give the network few chances to learn their faint edges; repeating
    them (see ``repeat_slices``) gives it more.
    """
    area = masks.reshape(len(masks), -1).astype(bool).mean(axis=1)
    return (area > 0) & (area < max_fraction)


def hard_slices(model: keras.Model, x: np.ndarray, masks: np.ndarray, max_dice: float,
                batch_size: int = 32) -> np.ndarray:
    """Which slices a mask-logits ``model`` segments with a Dice below ``max_dice`` at logit 0.

    The segmenter does not fit all of its own training slices (a small network, many easy slices), and
    mean Dice weighs each missed slice fully: repeating the ones it gets wrong spends the fine-tuning on
    them. An empty mask answered with any tumour scores 0, so false alarms count as hard too.
    """
    predicted = predict_logits(model, x, batch_size)[..., 0] > 0
    return dice_per_slice(predicted, masks) < max_dice


def pseudo_labels(model: keras.Model, x: np.ndarray, threshold: float, min_component_px: int,
                  batch_size: int = 32) -> np.ndarray:
    """The masks a mask-logits ``model`` draws on ``x`` as a bundle serves them: logits above
    ``threshold``, without components under ``min_component_px``.

    The segmentation set has 2070 training slices with an expert outline, while the classification set
    holds about 2000 more tumour images with a class label only. A segmenter that fits its own slices
    better than it segments new patients' may be short of data as much as of capacity; a served
    segmenter's outlines on those images give another more tumours to learn from (self-training;
    docs/models.md has what it gave here).
    """
    logits = predict_logits(model, x, batch_size)[..., 0]
    return np.stack([clean_mask(l > threshold, min_component_px) for l in logits]) if len(x) else \
        np.zeros(x.shape[:3], bool)


def train_segmenter(model: keras.Model, x: np.ndarray, masks: np.ndarray, epochs: int, batch_size: int = 16, *,
                    validation: tuple[np.ndarray, np.ndarray] | None = None, peak_lr: float = 2e-3,
                    weight_decay: float = 1e-4, warmup_epochs: float = 1.0, augment: bool = True,
                    ema: bool = True, time_budget_s: float | None = None,
                    checkpoint_path: str | Path | None = None, seed: int = 0, log=print,
                    verbose: int = 0, schedule_window: tuple[float, float] = (0.0, 1.0),
                    schedule_warmup: float = 0.0, resume_optimizer: list[np.ndarray] | None = None,
                    proximal_mu: float = 0.0) -> keras.callbacks.History:
    """Fit a mask-logits ``model`` on uint8 images and binary masks; best checkpoint by mean slice Dice
    on ``validation``. ``resume_optimizer`` and ``proximal_mu`` as for ``train_classifier``."""
    tf.random.set_seed(seed)
    x = _with_channel(x)
    masks = _with_channel(masks).astype(np.uint8)
    dataset = (tf.data.Dataset.from_tensor_slices((x, masks))
               .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
               .batch(batch_size, drop_remainder=len(x) > batch_size))
    if augment:
        dataset = dataset.map(lambda a, m: augment_batch(a, m), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = dataset.map(lambda a, m: (tf.cast(a, tf.float32), tf.cast(m, tf.float32)))
    dataset = dataset.prefetch(2)
    model.compile(optimizer=_optimizer(peak_lr, weight_decay, ema, proximal_mu), loss=dice_bce_loss,
                  metrics=[_SliceDiceMetric()])
    _restore_optimizer(model, resume_optimizer)
    _anchor_proximal_term(model, proximal_mu)
    steps = max(1, len(x) // batch_size)
    validation_data = None
    if validation is not None:
        validation_data = (_with_channel(validation[0]).astype(np.float32),
                           _with_channel(validation[1]).astype(np.float32))
    monitor = "val_dice" if validation is not None else "dice"
    history = model.fit(dataset, epochs=epochs if not time_budget_s else 10_000, validation_data=validation_data,
                        batch_size=batch_size,
                        callbacks=_callbacks(peak_lr, epochs, steps, warmup_epochs, time_budget_s, checkpoint_path,
                                             monitor, "max", ema, log, schedule_window, schedule_warmup),
                        verbose=verbose)
    if ema:
        model.optimizer.finalize_variable_values(model.trainable_variables)
    return history


def evaluate_segmenter(model: keras.Model, x: np.ndarray, masks: np.ndarray, batch_size: int = 32) -> dict[str, float]:
    """Loss, pooled Dice and IoU of a mask-logits model at model resolution."""
    x = _with_channel(x).astype(np.float32)
    masks = _with_channel(masks).astype(np.float32)
    logits = np.concatenate([np.asarray(model(x[i:i + batch_size], training=False)) for i in range(0, len(x), batch_size)])
    predicted = logits > 0
    truth = masks > 0.5
    intersection = float(np.logical_and(predicted, truth).sum())
    total = float(predicted.sum() + truth.sum())
    union = float(np.logical_or(predicted, truth).sum())
    return {"loss": float(dice_bce_loss(masks, logits)), "dice": 2 * intersection / max(total, 1.0),
            "iou": intersection / max(union, 1.0)}
