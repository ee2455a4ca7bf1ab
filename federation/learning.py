"""The model side of federated learning: what a node trains and what the coordinator evaluates.

A thin layer over diagnostics.ml (the one model, training and evaluation code): it picks the network
for a run, fixes the local-training options that federated averaging needs, and adds FedProx's
proximal term, which the shared training loop has no hook for.
"""

import time

import numpy as np

MODEL_CLASSIFIER = "classifier"
MODEL_SEGMENTER = "segmenter"


def build_model(kind: str, image_size: int, width: int):
    from diagnostics.ml import networks

    if kind == MODEL_SEGMENTER:
        return networks.build_segmenter(input_size=image_size, base_filters=width)
    return networks.build_classifier(input_size=image_size, width=width)


def train_local(model, kind: str, x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int,
                proximal_mu: float = 0.0, seed: int = 0) -> dict:
    """Train `model` in place on one hospital's cases; returns loss, accuracy (or dice) and seconds.

    The shared loop's weight average (EMA) and warm-up are switched off: a node trains only an epoch or
    two per round, and an average over so few steps would hand back nearly the weights it was sent.
    """
    from diagnostics.ml import training

    started = time.monotonic()
    if proximal_mu > 0:
        stats = _train_proximal(model, kind, x, y, epochs=epochs, batch_size=batch_size, mu=proximal_mu, seed=seed)
    elif kind == MODEL_SEGMENTER:
        history = training.train_segmenter(model, x, y, epochs, batch_size=batch_size, ema=False,
                                           warmup_epochs=0.0, seed=seed, log=lambda *_: None)
        stats = {"loss": float(history.history["loss"][-1])}
    else:
        history = training.train_classifier(model, x, y, epochs, batch_size=batch_size, ema=False,
                                            warmup_epochs=0.0, seed=seed, log=lambda *_: None)
        stats = {"loss": float(history.history["loss"][-1]), "accuracy": float(history.history["accuracy"][-1])}
    stats["seconds"] = time.monotonic() - started
    return stats


def _train_proximal(model, kind, x, y, *, epochs, batch_size, mu, seed, lr=1e-3):
    """FedProx local training (Li et al., MLSys 2020): loss + mu/2 * ||w - w_global||^2."""
    import keras
    import tensorflow as tf

    from diagnostics.ml import training
    from diagnostics.ml.augment import augment_batch

    tf.random.set_seed(seed)
    global_weights = [tf.constant(w) for w in model.trainable_weights]
    optimizer = keras.optimizers.Adam(learning_rate=lr)
    if kind == MODEL_SEGMENTER:
        loss_fn = training.dice_bce_loss
        targets = y.astype(np.float32)[..., None]
    else:
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        targets = y.astype(np.int32)
    dataset = (tf.data.Dataset.from_tensor_slices((x[..., None], targets)).shuffle(len(x), seed=seed)
               .batch(batch_size))
    losses, correct, seen = [], 0, 0
    for _ in range(epochs):
        for images, labels in dataset:
            if kind == MODEL_SEGMENTER:
                images, labels = augment_batch(images, labels)
            else:
                images = augment_batch(images)
            with tf.GradientTape() as tape:
                outputs = model(images, training=True)
                loss = loss_fn(labels, outputs)
                proximal = tf.add_n([tf.reduce_sum(tf.square(w - g)) for w, g in zip(model.trainable_weights,
                                                                                    global_weights)])
                total = loss + 0.5 * mu * proximal
            grads = tape.gradient(total, model.trainable_weights)
            optimizer.apply_gradients(zip(grads, model.trainable_weights))
            losses.append(float(loss))
            if kind != MODEL_SEGMENTER:
                correct += int(tf.reduce_sum(tf.cast(tf.argmax(outputs, axis=1, output_type=tf.int32) == labels,
                                                     tf.int32)))
                seen += int(labels.shape[0])
    stats = {"loss": float(np.mean(losses[-max(1, len(losses) // max(1, epochs)):]))}
    if seen:
        stats["accuracy"] = correct / seen
    return stats


def evaluate(model, kind: str, x: np.ndarray, y: np.ndarray) -> dict:
    """Classifier: loss, accuracy, macro_f1. Segmenter: loss, dice, iou."""
    from diagnostics.ml import training

    if kind == MODEL_SEGMENTER:
        return training.evaluate_segmenter(model, x, y)
    return training.evaluate_classifier(model, x, y)
