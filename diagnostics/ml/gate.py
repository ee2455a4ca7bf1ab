"""Does this look like a brain MRI at all? A check in front of the classifier, which answers for any picture.

The classifier has four answers and no "none of these": a cartoon, a photograph or a screenshot comes out
as one of them, often "no tumour" at full confidence, and a patient reads that as reassurance. (A
coloured picture is refused by the reader already: MRI images are grayscale, `readers.colour_share`.)

Here a preprocessed slice is described by simple statistics (the baseline's intensity histogram,
regional means and moments, plus edge strength, left-right symmetry and how dark the border is), and its
squared Mahalanobis distance from the training images' statistics, under a shrunk covariance
(Ledoit-Wolf), decides:

- above `refuse_threshold` (twice the largest distance of any training or calibration image), the upload
  is refused: no brain MRI the models learnt from comes near;
- above `flag_threshold` (a high quantile of the calibration images), the image is unusual: it is
  analysed, but its patient sees no result before a doctor has read it, and the doctor is warned. Some
  real MRIs land here (burnt-in annotations, unusual sequences), so this tier withholds, never refuses.

It is deliberately independent of the classifier's weights, so promoting a federated model does not
invalidate it. Its parameters are a small JSON file committed beside the models (`input_gate.json`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diagnostics.ml import baseline, preprocess

GATE_SIZE = 112
# The flag threshold: one calibration image in 200 would be read by a doctor first.
GATE_QUANTILE = 0.995
# Real MRIs never came within half of the refusal threshold: 2x the largest known distance.
REFUSE_FACTOR = 2.0
# Smaller than any slice the models learnt from (224 px and up) or most MR sequences make. Enlarged to
# the gate's size, a small picture is smoothed until its statistics pass (64 px noise did), so it is
# unusual by its size alone.
MIN_SIDE = 128
# An MR slice shows air around the head, so its bright region leaves most of the picture's edge dark.
# A photograph of a wall or a screen fills the frame, and once cropped and normalised its statistics can
# pass for a brain's. On the 5708 training images the foreground covers more than this share of the
# edge on 43 (0.75 %: slices cropped tight to the head), which a doctor then reads first.
FRAME_FILL_LIMIT = 0.8


@dataclass(frozen=True)
class GateVerdict:
    distance: float
    unusual: bool  # analysed, but read by a doctor before the patient sees a result
    refused: bool  # not analysed at all


def gate_features(pixels: np.ndarray) -> np.ndarray:
    """Feature vectors for uint8 preprocessed slices (N, S, S) -> (N, F) float32."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[None]
    values = pixels.astype(np.float32) / 255.0
    dx = np.abs(np.diff(values, axis=2))
    dy = np.abs(np.diff(values, axis=1))
    gradient = dx[:, :-1, :] + dy[:, :, :-1]
    laplacian = np.abs(values[:, 1:-1, 1:-1] * 4 - values[:, :-2, 1:-1] - values[:, 2:, 1:-1]
                       - values[:, 1:-1, :-2] - values[:, 1:-1, 2:])
    size = values.shape[1]
    frame = max(1, size // 10)
    border = np.concatenate([values[:, :frame, :].reshape(len(values), -1), values[:, -frame:, :].reshape(len(values), -1),
                             values[:, :, :frame].reshape(len(values), -1), values[:, :, -frame:].reshape(len(values), -1)],
                            axis=1)
    texture = np.stack([
        gradient.mean(axis=(1, 2)),
        np.percentile(gradient.reshape(len(values), -1), 90, axis=1),
        laplacian.mean(axis=(1, 2)),
        np.abs(values - values[:, :, ::-1]).mean(axis=(1, 2)),
        border.mean(axis=1),
    ], axis=1)
    return np.concatenate([baseline.image_features(pixels), texture], axis=1).astype(np.float32)


def edge_coverage(slice2d: np.ndarray) -> float:
    """The share of the picture's outermost pixels that its largest bright region (holes filled) covers."""
    from scipy import ndimage

    image = np.asarray(slice2d, dtype=np.float32)
    step = max(1, max(image.shape[:2]) // 256)  # the shape of the region is all that matters here
    image = image[::step, ::step]
    high = float(np.percentile(image, 99))
    if high <= 0:
        return 0.0
    bright = ndimage.binary_opening(image > 0.1 * high, iterations=2)
    regions, count = ndimage.label(bright)
    if count == 0:
        return 0.0
    sizes = ndimage.sum_labels(bright, regions, index=np.arange(1, count + 1))
    region = ndimage.binary_fill_holes(regions == int(np.argmax(sizes)) + 1)
    return float(np.mean([region[0].mean(), region[-1].mean(), region[:, 0].mean(), region[:, -1].mean()]))


def fills_the_frame(slice2d: np.ndarray) -> bool:
    return edge_coverage(slice2d) > FRAME_FILL_LIMIT


@dataclass
class InputGate:
    mean: np.ndarray
    scale: np.ndarray
    precision: np.ndarray
    flag_threshold: float
    refuse_threshold: float
    metrics: dict

    @classmethod
    def fit(cls, pixels: np.ndarray, calibration: np.ndarray, quantile: float) -> "InputGate":
        """Fit on training slices; the flag threshold is the `quantile` of the calibration slices' distances."""
        from sklearn.covariance import LedoitWolf

        features = gate_features(pixels)
        mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
        precision = LedoitWolf().fit((features - mean) / scale).precision_
        gate = cls(mean, scale, precision, flag_threshold=np.inf, refuse_threshold=np.inf, metrics={})
        calibration_distances = gate.distances(calibration)
        gate.flag_threshold = float(np.quantile(calibration_distances, quantile))
        known = max(float(gate.distances(pixels).max()), float(calibration_distances.max()))
        gate.refuse_threshold = REFUSE_FACTOR * known
        return gate

    def distances(self, pixels: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distances of preprocessed slices from the training images."""
        centred = (gate_features(pixels) - self.mean) / self.scale
        return np.einsum("ij,jk,ik->i", centred, self.precision, centred)

    def verdicts(self, pixels: np.ndarray) -> list[GateVerdict]:
        return [GateVerdict(float(d), unusual=bool(d > self.flag_threshold), refused=bool(d > self.refuse_threshold))
                for d in self.distances(pixels)]

    def judge(self, slice2d: np.ndarray) -> GateVerdict:
        """The verdict on one decoded slice, at any size (preprocessed here as for the models)."""
        verdict = self.verdicts(preprocess.preprocess_slice(slice2d, GATE_SIZE).pixels[None])[0]
        if not verdict.unusual and (min(np.shape(slice2d)[:2]) < MIN_SIDE or fills_the_frame(slice2d)):
            return GateVerdict(verdict.distance, unusual=True, refused=verdict.refused)
        return verdict

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({
            "size": GATE_SIZE, "mean": self.mean.tolist(), "scale": self.scale.tolist(),
            "precision": np.asarray(self.precision, dtype=np.float32).tolist(),
            "flag_threshold": self.flag_threshold, "refuse_threshold": self.refuse_threshold,
            "metrics": self.metrics,
        }))

    @classmethod
    def load(cls, path: Path) -> "InputGate":
        stored = json.loads(Path(path).read_text())
        if stored["size"] != GATE_SIZE:
            raise ValueError(f"{path} was fitted at {stored['size']} px; this code computes features at {GATE_SIZE} px")
        return cls(np.asarray(stored["mean"], dtype=np.float32), np.asarray(stored["scale"], dtype=np.float32),
                   np.asarray(stored["precision"], dtype=np.float64), float(stored["flag_threshold"]),
                   float(stored["refuse_threshold"]), stored.get("metrics", {}))


def synthetic_non_mri(count: int, size: int = 256, seed: int = 0) -> list[np.ndarray]:
    """Grayscale pictures that are not MRIs, for measuring the gate where no such data set is at hand.

    Noise (uniform, Gaussian, smooth blobs), checkerboards and stripes, flat-shaded drawings of
    shapes (a cartoon's look once its colour is dropped), gradients and a drawn "head": an ellipse
    with a darker outline, the kind of picture that fooled the classifier into "no tumour".
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    kinds = ("uniform", "gaussian", "blobs", "checker", "stripes", "cartoon", "gradient", "drawn_head")
    images = []
    for index in range(count):
        kind = kinds[index % len(kinds)]
        if kind == "uniform":
            image = rng.uniform(0, 255, (size, size))
        elif kind == "gaussian":
            image = rng.normal(rng.uniform(60, 190), rng.uniform(10, 60), (size, size))
        elif kind == "blobs":
            coarse = rng.uniform(0, 255, (8, 8))
            image = np.kron(coarse, np.ones((size // 8, size // 8)))
            image = (image + np.roll(image, size // 16, 0) + np.roll(image, size // 16, 1)) / 3
        elif kind == "checker":
            period = int(rng.integers(4, 64))
            image = (((xx * size) // period + (yy * size) // period) % 2) * 255.0
        elif kind == "stripes":
            image = (np.sin(2 * np.pi * rng.uniform(2, 30) * (xx if rng.random() < 0.5 else yy)) + 1) * 127.5
        elif kind == "cartoon":
            image = np.full((size, size), rng.uniform(40, 220))
            for _ in range(int(rng.integers(1, 5))):
                cx, cy, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.3)
                image[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(0, 255)
            top, left = rng.integers(0, size // 2, 2)
            image[top:top + size // 8, left:left + size // 3] = rng.uniform(0, 255)  # a caption box
        elif kind == "gradient":
            angle = rng.uniform(0, 2 * np.pi)
            image = (np.cos(angle) * xx + np.sin(angle) * yy)
            image = (image - image.min()) / (np.ptp(image) + 1e-6) * 255
        else:  # drawn_head
            cx, cy = 0.5 + rng.uniform(-0.05, 0.05), 0.5 + rng.uniform(-0.05, 0.05)
            ax, ay = rng.uniform(0.3, 0.4), rng.uniform(0.35, 0.45)
            radius = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2
            image = np.where(radius < 1, rng.uniform(120, 220), rng.uniform(0, 40))
            image = np.where((radius > 0.85) & (radius < 1), rng.uniform(40, 100), image)
            for _ in range(int(rng.integers(0, 3))):
                bx, by, br = cx + rng.uniform(-0.15, 0.15), cy + rng.uniform(-0.15, 0.15), rng.uniform(0.03, 0.1)
                image[(xx - bx) ** 2 + (yy - by) ** 2 < br * br] = rng.uniform(0, 255)
        images.append(np.clip(image, 0, 255).astype(np.uint8))
    return images


SYNTHETIC_SIDES = (64, 128, 256, 512)


def measure_gate(gate: InputGate, validation: np.ndarray, synthetic_count: int = 400,
                 sides: tuple[int, ...] = SYNTHETIC_SIDES, validation_fills_frame: np.ndarray | None = None) -> dict:
    """What the gate does to real validation MRIs and to synthetic non-MRIs (seed 1) drawn at several
    sizes, each judged as an upload is (size rule included); the headline rate is the worst size's.

    `validation` holds the preprocessed slices; `validation_fills_frame`, whether each decoded image fills
    its frame (`fills_the_frame`, read from the image before it was cropped), flags those too."""
    validation_verdicts = gate.verdicts(validation)
    if validation_fills_frame is not None:
        validation_verdicts = [GateVerdict(v.distance, unusual=v.unusual or bool(filled), refused=v.refused)
                               for v, filled in zip(validation_verdicts, validation_fills_frame)]
    by_side = {}
    for side in sides:
        verdicts = [gate.judge(picture) for picture in synthetic_non_mri(synthetic_count, side, seed=1)]
        by_side[str(side)] = {
            "flagged_or_refused": round(sum(v.unusual for v in verdicts) / len(verdicts), 4),
            "refused": round(sum(v.refused for v in verdicts) / len(verdicts), 4),
        }
    return {
        "validation": {
            "images": len(validation),
            "flagged": sum(v.unusual for v in validation_verdicts),
            "refused": sum(v.refused for v in validation_verdicts),
        },
        "synthetic_non_mri": {
            "images": synthetic_count,
            "flagged_or_refused": min(rates["flagged_or_refused"] for rates in by_side.values()),
            "refused": min(rates["refused"] for rates in by_side.values()),
            "by_side": by_side,
        },
    }
