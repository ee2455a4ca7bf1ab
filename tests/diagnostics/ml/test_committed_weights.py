"""The baseline bundles committed in diagnostics/weights: present, small, intact and wired correctly."""
import json
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from diagnostics.ml import readers
from diagnostics.ml.inference import Predictor

from .helpers import FIGSHARE, kaggle_slice, requires_data

WEIGHTS = Path(settings.BASE_DIR) / "diagnostics" / "weights"
pytestmark = [requires_data, pytest.mark.skipif(not (WEIGHTS / "classifier.json").exists(),
                                                reason="baseline weights not installed")]


@pytest.fixture(scope="module")
def predictor():
    return Predictor.from_model_dir(WEIGHTS, backend="tflite")


def test_all_artefacts_fit_the_size_budget():
    total = sum(p.stat().st_size for p in WEIGHTS.iterdir() if p.is_file())
    assert total <= 20 * 1024 * 1024


def test_bundles_carry_their_validation_metrics():
    classifier = json.loads((WEIGHTS / "classifier.json").read_text())
    assert classifier["classes"] == list(readers.CLASS_NAMES)
    assert classifier["validation_metrics"]["images"] > 500
    segmenter = json.loads((WEIGHTS / "segmenter.json").read_text())
    assert "empty_mask_rate_notumor" in segmenter["validation_metrics"] or "dice_mean" in segmenter["validation_metrics"]


@pytest.mark.parametrize("class_name", readers.CLASS_NAMES)
def test_recognises_a_clear_example_of_each_class(predictor, class_name):
    # Regression guard for the wiring (preprocessing, input scaling, output order), not a measure of
    # accuracy: the second file of each class folder, which the committed model gets right.
    result = predictor.predict(kaggle_slice(class_name, 1))
    assert result.label == class_name
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-6)


def test_outlines_a_figshare_tumour(predictor):
    image = readers.read_grayscale(FIGSHARE / "images" / "1.png")
    truth = readers.read_mask(FIGSHARE / "masks" / "1.png")
    result = predictor.predict(image, pixel_spacing_mm=(0.49, 0.49))
    assert result.tumour_found
    overlap = np.logical_and(result.mask, truth).sum() / truth.sum()
    assert overlap > 0.3
    assert result.area_mm2 == pytest.approx(result.tumour_area_px * 0.49 * 0.49)
