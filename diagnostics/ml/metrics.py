"""Evaluation metrics for reports: classification (accuracy, macro-F1, per-class precision/recall/F1,
confusion matrix, one-vs-rest ROC-AUC, ECE) and segmentation (Dice, IoU, 95th-percentile Hausdorff), and a
bootstrap interval that resamples patients' slices together."""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .calibration import expected_calibration_error


def classification_report(labels: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> dict:
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support, roc_auc_score

    labels = np.asarray(labels)
    predicted = probabilities.argmax(axis=1)
    indices = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=indices, zero_division=0)
    try:
        auc = roc_auc_score(labels, probabilities, multi_class="ovr", labels=indices)
        auc_per_class = {name: float(roc_auc_score(labels == i, probabilities[:, i])) for i, name in enumerate(class_names)}
    except ValueError:  # a class missing from a tiny evaluation set
        auc, auc_per_class = float("nan"), {}
    return {
        "images": int(len(labels)),
        "accuracy": float((predicted == labels).mean()),
        "macro_f1": float(f1_score(labels, predicted, average="macro", labels=indices, zero_division=0)),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(support[i]), "roc_auc_ovr": auc_per_class.get(name)}
                      for i, name in enumerate(class_names)},
        "confusion_matrix": confusion_matrix(labels, predicted, labels=indices).tolist(),
        "roc_auc_ovr_macro": float(auc),
        "ece": expected_calibration_error(probabilities, labels),
    }


def dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two binary masks; 1.0 when both are empty (the right answer to "nothing here")."""
    return float(dice_per_slice(np.asarray(predicted)[None], np.asarray(truth)[None])[0])


def dice_per_slice(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Dice of each slice of two stacks (N, ...) of binary masks; 1.0 where both are empty."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    axes = tuple(range(1, truth.ndim))
    total = predicted.sum(axis=axes) + truth.sum(axis=axes)
    overlap = np.logical_and(predicted, truth).sum(axis=axes)
    return np.where(total == 0, 1.0, 2.0 * overlap / np.maximum(total, 1))


def iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    union = np.logical_or(predicted, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(predicted, truth).sum() / union)


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask)


def hausdorff95(predicted: np.ndarray, truth: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0)) -> float:
    """95th percentile of the symmetric surface distances (pixels, or mm with ``spacing``).

    NaN when exactly one mask is empty (the distance is undefined); 0 when both are empty.
    """
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    if not predicted.any() and not truth.any():
        return 0.0
    if not predicted.any() or not truth.any():
        return float("nan")
    surface_p, surface_t = _surface(predicted), _surface(truth)
    to_truth = ndimage.distance_transform_edt(~surface_t, sampling=spacing)[surface_p]
    to_predicted = ndimage.distance_transform_edt(~surface_p, sampling=spacing)[surface_t]
    return float(np.percentile(np.concatenate([to_truth, to_predicted]), 95))


def cluster_bootstrap_interval(values, clusters, level: float = 0.95, resamples: int = 2000,
                               seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of ``values``, resampling whole ``clusters``.

    Neighbouring slices of one patient are nearly the same image: resampled one by one they would pass
    for independent evidence and the interval would come out too narrow. Each draw takes as many
    clusters as there are, with replacement, and averages every value in them.
    """
    values = np.asarray(values, float)
    if len(values) == 0:
        raise ValueError("no values to bootstrap")
    if len(clusters) != len(values):
        raise ValueError(f"{len(clusters)} cluster labels for {len(values)} values")
    if not 0 < level < 1:
        raise ValueError("level must lie between 0 and 1")
    _, members = np.unique(np.asarray(clusters), return_inverse=True)
    sums = np.bincount(members, weights=values)
    counts = np.bincount(members).astype(float)
    draws = np.random.default_rng(seed).integers(0, len(sums), size=(resamples, len(sums)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def segmentation_metrics(predicted_masks, true_masks, clusters=None) -> dict:
    """Mean per-slice Dice/IoU/HD95 and pooled Dice over slices that contain a tumour.

    With ``clusters`` (one label per slice, e.g. its patient), also a 95 % interval for the mean Dice
    that resamples whole clusters (``cluster_bootstrap_interval``) and the number of clusters.
    """
    dices, ious, distances = [], [], []
    intersection = total = 0
    missed = 0
    for predicted, truth in zip(predicted_masks, true_masks):
        predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
        dices.append(dice(predicted, truth))
        ious.append(iou(predicted, truth))
        distance = hausdorff95(predicted, truth)
        if np.isnan(distance):
            missed += 1
        else:
            distances.append(distance)
        intersection += np.logical_and(predicted, truth).sum()
        total += predicted.sum() + truth.sum()
    result = {
        "slices": len(dices),
        "dice_mean": float(np.mean(dices)) if dices else float("nan"),
        "dice_median": float(np.median(dices)) if dices else float("nan"),
        "dice_pooled": float(2 * intersection / total) if total else float("nan"),
        "iou_mean": float(np.mean(ious)) if ious else float("nan"),
        "hd95_px_median": float(np.median(distances)) if distances else float("nan"),
        "hd95_px_mean": float(np.mean(distances)) if distances else float("nan"),
        "tumour_missed_slices": int(missed),
    }
    if clusters is not None:
        result["dice_mean_interval95"] = cluster_bootstrap_interval(dices, clusters)
        result["dice_interval_blocks"] = len(set(clusters))
    return result


def json_safe(value):
    """`value` with every NaN or infinity (a diverged model's loss, an undefined score) as None: JSON
    has neither, and PostgreSQL's JSON columns refuse them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value
