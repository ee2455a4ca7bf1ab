"""The one preprocessing step shared by training, evaluation and inference.

``preprocess_slice(image, size)`` turns any decoded 2-D grayscale slice (uint8 JPEG pixels, 12-bit
DICOM values, float NIfTI intensities) into the model's input: the brain is located, cropped to a
square box with a small margin, resized to ``size x size`` and its intensities stretched between robust
percentiles. The result is uint8 so that a cached training set and a live upload are bit-for-bit the
same kind of input; the networks rescale by 1/255 as their first layer.

The crop box is returned with the pixels so that anything the models produce at model resolution (a
tumour mask, a heatmap) can be put back onto the caller's image with ``paste_to_input``, and so that a
ground-truth mask can follow the image into model space with ``crop_mask``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

# Percentiles rather than min/max: a few hot pixels (vessels, fat, burnt-in text) must not decide the
# contrast of the whole slice.
LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.5
# Foreground is anything brighter than this fraction of the bright end; MRI background is near zero
# but carries noise and ghosting that a zero threshold would keep.
FOREGROUND_FRACTION = 0.08
# Margin around the brain box, as a fraction of its side, so the skull edge and a peripheral tumour
# are never cut.
CROP_MARGIN = 0.04


@dataclass(frozen=True)
class CropBox:
    """A square box in input pixel coordinates; it may reach past the image edge (zero padding)."""

    top: int
    left: int
    side: int
    input_shape: tuple[int, int]


@dataclass(frozen=True)
class PreprocessedSlice:
    pixels: np.ndarray  # uint8, (size, size)
    box: CropBox


def _as_float(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3:  # RGB-encoded grayscale: average the channels
        image = image[..., :3].mean(axis=-1)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale slice, got shape {image.shape}")
    image = image.astype(np.float32)
    return np.nan_to_num(image, nan=0.0, posinf=0.0, neginf=0.0)


def find_brain_box(image: np.ndarray) -> CropBox:
    """Square bounding box of the head in ``image`` (a 2-D array), ignoring specks and burnt-in text."""
    image = _as_float(image)
    height, width = image.shape
    low, high = np.percentile(image, [1.0, 99.0])
    if high - low <= 1e-6:
        return CropBox(0, 0, max(height, width), (height, width))
    foreground = image > low + FOREGROUND_FRACTION * (high - low)
    foreground = ndimage.binary_opening(foreground, iterations=2)
    labels, count = ndimage.label(foreground)
    if count == 0:
        return CropBox(0, 0, max(height, width), (height, width))
    areas = ndimage.sum_labels(foreground, labels, index=np.arange(1, count + 1))
    # Keep every sizeable component (a head can appear in two pieces on a low slice); drop labels,
    # annotations and noise that are small next to the largest one.
    kept_labels = np.zeros(count + 1, dtype=bool)
    kept_labels[1:] = areas >= 0.1 * areas.max()
    head = kept_labels[labels]
    rows, cols = np.flatnonzero(head.any(axis=1)), np.flatnonzero(head.any(axis=0))
    top, bottom = rows[0], rows[-1] + 1
    left, right = cols[0], cols[-1] + 1
    side = int(round(max(bottom - top, right - left) * (1 + 2 * CROP_MARGIN)))
    side = max(side, 8)
    centre_row = (top + bottom) / 2
    centre_col = (left + right) / 2
    return CropBox(int(round(centre_row - side / 2)), int(round(centre_col - side / 2)), side, (height, width))


def _crop(image: np.ndarray, box: CropBox, fill: float = 0.0) -> np.ndarray:
    out = np.full((box.side, box.side), fill, dtype=image.dtype)
    height, width = image.shape
    src_top, src_left = max(box.top, 0), max(box.left, 0)
    src_bottom, src_right = min(box.top + box.side, height), min(box.left + box.side, width)
    if src_bottom > src_top and src_right > src_left:
        out[src_top - box.top:src_bottom - box.top, src_left - box.left:src_right - box.left] = \
            image[src_top:src_bottom, src_left:src_right]
    return out


def _resize(array: np.ndarray, size: tuple[int, int], resample: int) -> np.ndarray:
    # PIL's resize filters scale their support when shrinking, so downsampling is anti-aliased.
    return np.asarray(Image.fromarray(array.astype(np.float32), mode="F").resize(
        (size[1], size[0]), resample=resample), dtype=np.float32)


def preprocess_slice(image: np.ndarray, size: int, box: CropBox | None = None) -> PreprocessedSlice:
    """Brain crop, resize to ``size`` and percentile intensity normalisation; returns uint8 pixels.

    ``image`` is any 2-D grayscale array (or RGB-encoded grayscale). ``box`` forces a crop (used when
    the same slice is prepared at two sizes); by default it is found with ``find_brain_box``.
    """
    image = _as_float(image)
    box = box or find_brain_box(image)
    cropped = _crop(image, box, fill=float(image.min()))
    resized = _resize(cropped, (size, size), Image.BILINEAR)
    low, high = np.percentile(resized, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if high - low <= 1e-6:
        normalised = np.zeros_like(resized)
    else:
        normalised = np.clip((resized - low) / (high - low), 0.0, 1.0)
    return PreprocessedSlice(np.round(normalised * 255.0).astype(np.uint8), box)


def crop_mask(mask: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Bring a ground-truth mask (any nonzero = tumour) into model space: bool (size, size)."""
    mask = (np.asarray(mask) > 0).astype(np.float32)
    if mask.ndim == 3:
        mask = mask.max(axis=-1)
    return _resize(_crop(mask, box), (size, size), Image.BILINEAR) >= 0.5


def paste_to_input(model_map: np.ndarray, box: CropBox, *, binary: bool = False) -> np.ndarray:
    """Map a (size, size) model-space array back onto the input image's pixel grid.

    Outside the crop box the result is 0 (no tumour, no attention). ``binary`` thresholds at 0.5 and
    returns a bool mask; otherwise a float32 map is returned.
    """
    model_map = np.asarray(model_map, dtype=np.float32)
    scaled = _resize(model_map, (box.side, box.side), Image.BILINEAR)
    height, width = box.input_shape
    out = np.zeros((height, width), dtype=np.float32)
    src_top, src_left = max(box.top, 0), max(box.left, 0)
    src_bottom, src_right = min(box.top + box.side, height), min(box.left + box.side, width)
    if src_bottom > src_top and src_right > src_left:
        out[src_top:src_bottom, src_left:src_right] = \
            scaled[src_top - box.top:src_bottom - box.top, src_left - box.left:src_right - box.left]
    return out >= 0.5 if binary else out
