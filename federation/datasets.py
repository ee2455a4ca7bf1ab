"""The data each side of a federated run sees.

A node: only its own hospital's doctor-reviewed cases, decrypted with that hospital's key inside the
node's process (`hospital_training_set`). The coordinator: a validation split of the shared public data
that it owns (`coordinator_validation_set`), never a hospital's cases.
"""

import logging

import numpy as np
from django.conf import settings

log = logging.getLogger(__name__)


def _reviewed_cases(hospital):
    """(image, label, mask|None) for every reviewed case of `hospital`.

    diagnostics.training_data.reviewed_cases is the one reader of reviewed cases; until that module
    lands this reads the same rows (confirmed reviews, scoped to the hospital) through the same storage.
    """
    try:
        from diagnostics.training_data import reviewed_cases
    except ImportError:
        reviewed_cases = _reviewed_cases_fallback
    yield from reviewed_cases(hospital)


def _reviewed_cases_fallback(hospital):
    from diagnostics.models.scans import ReviewState, Scan
    from diagnostics.services import REVIEW_MASK_BLOB, SCAN_BLOB, decode_upload
    from hospitals.storage import read_blob

    scans = Scan.objects.filter(hospital=hospital, review_state=ReviewState.CONFIRMED).order_by("created_at", "id")
    for scan in scans.iterator():
        data = read_blob(hospital, scan.blob_path, record_type=SCAN_BLOB, record_id=scan.id, sha256=scan.blob_sha256)
        image = decode_upload(data).slices[0]
        review = scan.reviews.order_by("-created_at").first() if hasattr(scan, "reviews") else None
        mask = None
        if review is not None and review.mask_path:
            mask_png = read_blob(hospital, review.mask_path, record_type=REVIEW_MASK_BLOB, record_id=review.id,
                                 sha256=review.mask_sha256)
            mask = decode_upload(mask_png).slices[0] > 0
        yield image, scan.reviewed_label, mask


def hospital_training_set(hospital, *, kind: str, image_size: int, limit: int = 0):
    """Preprocessed (x uint8 (N,S,S), y) of one hospital: class indices, or masks for the segmenter."""
    from diagnostics.ml.preprocess import crop_mask, preprocess_slice
    from diagnostics.ml.readers import CLASS_NAMES

    from federation.learning import MODEL_SEGMENTER

    images, targets = [], []
    for image, label, mask in _reviewed_cases(hospital):
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
