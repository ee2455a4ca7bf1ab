"""The floor every report compares against: logistic regression on simple image features.

Features of a preprocessed slice: a 32-bin intensity histogram of the brain box, mean and spread of
intensity, and the mean intensity of a 4x4 grid of regions (where the bright mass sits). If a CNN does
not beat this clearly, it has learnt little beyond brightness.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HISTOGRAM_BINS = 32
GRID = 4


def image_features(pixels: np.ndarray) -> np.ndarray:
    """Feature vectors for uint8 preprocessed slices (N, S, S) -> (N, F) float32."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[None]
    values = pixels.astype(np.float32) / 255.0
    n, size = len(values), values.shape[1]
    histogram = np.stack([np.histogram(v, bins=HISTOGRAM_BINS, range=(0.0, 1.0))[0] for v in values]) / (size * size)
    cell = size // GRID
    grid = values[:, :cell * GRID, :cell * GRID].reshape(n, GRID, cell, GRID, cell).mean(axis=(2, 4)).reshape(n, -1)
    moments = np.stack([values.mean(axis=(1, 2)), values.std(axis=(1, 2)),
                        (values > 0.75).mean(axis=(1, 2))], axis=1)
    return np.concatenate([histogram, grid, moments], axis=1).astype(np.float32)


class LogisticBaseline:
    """Standardised features -> multinomial logistic regression; stored as plain JSON."""

    def __init__(self, mean=None, scale=None, coef=None, intercept=None, classes=None):
        self.mean, self.scale, self.coef, self.intercept, self.classes = mean, scale, coef, intercept, classes

    def fit(self, pixels: np.ndarray, labels: np.ndarray, classes: list[str]) -> "LogisticBaseline":
        from sklearn.linear_model import LogisticRegression

        features = image_features(pixels)
        self.mean, self.scale = features.mean(axis=0), features.std(axis=0) + 1e-6
        model = LogisticRegression(max_iter=2000, C=1.0).fit((features - self.mean) / self.scale, labels)
        self.coef, self.intercept, self.classes = model.coef_, model.intercept_, list(classes)
        return self

    def predict_proba(self, pixels: np.ndarray) -> np.ndarray:
        logits = ((image_features(pixels) - self.mean) / self.scale) @ np.asarray(self.coef).T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def save(self, path: Path, metrics: dict | None = None) -> None:
        Path(path).write_text(json.dumps({
            "classes": self.classes, "mean": np.asarray(self.mean).tolist(), "scale": np.asarray(self.scale).tolist(),
            "coef": np.asarray(self.coef).tolist(), "intercept": np.asarray(self.intercept).tolist(),
            "features": {"histogram_bins": HISTOGRAM_BINS, "grid": GRID}, "validation_metrics": metrics or {},
        }))

    @classmethod
    def load(cls, path: Path) -> "LogisticBaseline":
        stored = json.loads(Path(path).read_text())
        return cls(np.asarray(stored["mean"]), np.asarray(stored["scale"]), np.asarray(stored["coef"]),
                   np.asarray(stored["intercept"]), stored["classes"])
