"""The data each side of a federated run sees.

A node: only its own hospital's doctor-reviewed cases, decrypted with that hospital's key inside the
node's process (`hospital_training_set`). The coordinator: a validation split of the shared public data
that it owns (`coordinator_validation_set`), never a hospital's cases.
"""

import logging

import numpy as np
from django.conf import settings

log = logging.getLogger(__name__)


def hospital_training_set(hospital, *, kind: str, image_size: int, limit: int = 0):
    """Preprocessed (x uint8 (N,S,S), y) of one hospital: class indices, or masks for the segmenter."""
    from diagnostics.ml.preprocess import crop_mask, preprocess_slice
    from diagnostics.ml.readers import CLASS_NAMES
    from diagnostics.training_data import reviewed_cases

    from federation.learning import MODEL_SEGMENTER

    images, targets = [], []
    for image, label, mask in reviewed_cases(hospital):
        if kind == MODEL_SEGMENTER and mask is None:
            continue
        prepared = preprocess_slice(image, image_size)
        images.append(prepared.pixels)
        targets.append(crop_mask(mask, prepared.box, image_size) if kind == MODEL_SEGMENTER
                       else CLASS_NAMES.index(label))
        if limit and len(images) >= limit:
            break
    x = np.stack(images) if images else np.zeros((0, image_size, image_size), np.uint8)
    y = np.stack(targets) if kind == MODEL_SEGMENTER and targets else np.asarray(targets, dtype=np.int64)
    log.info("hospital %s: %d reviewed cases for %s training", hospital.slug, len(x), kind)
    return x, y


def _cache_dir():
    return settings.VAR_DIR / "cache"


def kaggle_split(split: str, *, limit_per_class: int = 0) -> list[dict]:
    """Manifest rows of one split of the shared training set (deduplicated, grouped; see diagnostics.ml.data).

    `limit_per_class` keeps the first N of each class in manifest order, which is deterministic.
    """
    from diagnostics.ml.data import kaggle_manifest

    rows = [m for m in kaggle_manifest(settings.NEUROFED_DATA_DIR, _cache_dir()) if m["split"] == split]
    if limit_per_class:
        taken: dict[str, int] = {}
        kept = []
        for row in rows:
            if taken.get(row["label"], 0) < limit_per_class:
                taken[row["label"]] = taken.get(row["label"], 0) + 1
                kept.append(row)
        rows = kept
    return rows


# BatchNorm statistics settle within a few hundred images (learning.recalibrate_batchnorm reads at most
# 16 batches of 64).
STATISTICS_IMAGES_PER_CLASS = 64


def coordinator_statistics_images(*, kind: str, image_size: int) -> np.ndarray:
    """Images the coordinator owns, for the global model's BatchNorm statistics under central DP: the shared
    set's calibration split (not the validation split the rounds are measured on), preprocessed."""
    from diagnostics.ml.data import figshare_dataset, load_classification_arrays

    from federation.learning import MODEL_SEGMENTER

    if kind == MODEL_SEGMENTER:
        data = figshare_dataset(settings.NEUROFED_DATA_DIR, _cache_dir(), image_size)
        return data.pixels[data.splits == "calib"][: 4 * STATISTICS_IMAGES_PER_CLASS]
    rows = kaggle_split("calib", limit_per_class=STATISTICS_IMAGES_PER_CLASS)
    return load_classification_arrays([settings.NEUROFED_DATA_DIR / r["path"] for r in rows], image_size)


def coordinator_validation_set(*, kind: str, image_size: int, limit_per_class: int = 0):
    """The coordinator's own validation data: the shared set's held-out split, preprocessed."""
    from diagnostics.ml.data import figshare_dataset, load_classification_arrays
    from diagnostics.ml.readers import CLASS_NAMES

    from federation.learning import MODEL_SEGMENTER

    if kind == MODEL_SEGMENTER:
        data = figshare_dataset(settings.NEUROFED_DATA_DIR, _cache_dir(), image_size)
        chosen = data.splits == "val"
        x, masks = data.pixels[chosen], data.masks[chosen]
        if limit_per_class:
            x, masks = x[: 3 * limit_per_class], masks[: 3 * limit_per_class]
        return x, masks
    rows = kaggle_split("val", limit_per_class=limit_per_class)
    x = load_classification_arrays([settings.NEUROFED_DATA_DIR / r["path"] for r in rows], image_size)
    y = np.asarray([CLASS_NAMES.index(r["label"]) for r in rows], dtype=np.int64)
    return x, y


def simulated_hospital_shares(*, partition: str, hospitals: int, per_hospital: int, image_size: int,
                              alpha: float = 0.5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """The cases `seed_federation` would give `hospitals` hospitals, preprocessed (x uint8, y class index),
    read from the shared set in place: for the in-process simulation (federation.simulation), which has
    no hospitals, keys or database. A case `seed_federation` skips as a copy of one already imported
    is kept here, so a share can be a case or two larger.
    """
    from diagnostics.ml.data import kaggle_dataset
    from diagnostics.ml.partition import hospital_shares

    data = kaggle_dataset(settings.NEUROFED_DATA_DIR, _cache_dir(), image_size)
    train = np.flatnonzero(data.splits == "train")
    labels = [data.manifest[i]["label"] for i in train]
    shares = hospital_shares(labels, hospitals, partition=partition, per_hospital=per_hospital, alpha=alpha,
                             seed=seed)
    return [(data.pixels[train[share]], data.labels[train[share]]) for share in shares]


def shared_split(split: str, *, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """One held-out split of the shared classification set ("calib" or "val"), preprocessed."""
    from diagnostics.ml.data import kaggle_dataset

    data = kaggle_dataset(settings.NEUROFED_DATA_DIR, _cache_dir(), image_size)
    return data.subset(split)
