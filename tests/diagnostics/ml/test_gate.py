"""The input gate (diagnostics/ml/gate.py) and the reader's colour check: what is no brain MRI."""

import json

import numpy as np
import pytest
from PIL import Image

from diagnostics.ml import gate, preprocess, readers
from diagnostics.ml.gate import InputGate
from tests.diagnostics import samples


@pytest.fixture(scope="module")
def committed_gate():
    from django.conf import settings

    return InputGate.load(settings.INPUT_GATE_PATH)


def test_real_mris_of_every_class_pass(committed_gate):
    for label in readers.CLASS_NAMES:
        for index in range(3):
            verdict = committed_gate.judge(samples.slice_array(label, index))
            assert not verdict.refused and not verdict.unusual, (label, index, verdict)


def test_a_checkerboard_and_a_drawn_head_are_refused_noise_is_flagged(committed_gate):
    assert committed_gate.judge(samples.checkerboard()).refused
    head = gate.synthetic_non_mri(8, seed=3)[7]  # the eighth kind is the drawn head
    assert committed_gate.judge(head).refused
    noise = np.random.default_rng(0).integers(0, 256, (256, 256), dtype=np.uint8)
    verdict = committed_gate.judge(noise)
    assert verdict.unusual and not verdict.refused


def test_the_committed_gate_records_what_it_was_measured_to_do(committed_gate):
    validation = committed_gate.metrics["validation"]
    assert validation["images"] > 800 and validation["refused"] == 0
    # Flagged real MRIs wait for a doctor: one in 200 by their statistics, a few more cropped to the head.
    assert validation["flagged"] / validation["images"] < 0.02
    assert committed_gate.metrics["synthetic_non_mri"]["flagged_or_refused"] > 0.95
    assert committed_gate.flag_threshold < committed_gate.refuse_threshold


def test_fit_puts_the_flag_threshold_at_the_calibration_quantile_and_round_trips(tmp_path):
    slices = [preprocess.preprocess_slice(samples.slice_array(label, i), gate.GATE_SIZE).pixels
              for label in readers.CLASS_NAMES for i in range(8)]
    train, calibration = np.stack(slices[::2]), np.stack(slices[1::2])
    fitted = InputGate.fit(train, calibration, 0.75)
    distances = fitted.distances(calibration)
    assert (distances <= fitted.flag_threshold).mean() == pytest.approx(0.75, abs=1 / len(calibration))
    assert fitted.refuse_threshold == pytest.approx(
        gate.REFUSE_FACTOR * max(fitted.distances(train).max(), distances.max()), rel=1e-5)
    measured = gate.measure_gate(fitted, calibration, synthetic_count=16)
    assert measured["validation"] == {"images": len(calibration), "flagged": int((distances > fitted.flag_threshold).sum()),
                                      "refused": int((distances > fitted.refuse_threshold).sum())}
    assert measured["synthetic_non_mri"]["images"] == 16
    fitted.save(tmp_path / "gate.json")
    loaded = InputGate.load(tmp_path / "gate.json")
    assert np.allclose(loaded.distances(calibration), distances, rtol=1e-3)
    stored = json.loads((tmp_path / "gate.json").read_text())
    stored["size"] = 64
    (tmp_path / "gate.json").write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="fitted at 64 px"):
        InputGate.load(tmp_path / "gate.json")


def test_a_colour_picture_is_refused_by_the_reader_a_grayscale_rgb_mri_is_not():
    with pytest.raises(readers.ScanDecodeError) as refused:
        readers.decode_scan(samples.array_png(samples.colour_cartoon()))
    assert refused.value.code == "not_brain_mri" and "colour" in refused.value.detail
    gray = samples.slice_array("glioma", 0).astype(np.uint8)
    as_rgb = np.repeat(gray[..., None], 3, axis=2)
    assert readers.colour_share(as_rgb) == 0.0
    assert readers.decode_scan(samples.array_png(as_rgb)).kind == "png"


def test_a_small_picture_is_unusual_by_its_size_alone(committed_gate):
    """Enlarged to the gate's size, small noise is smoothed until its statistics pass."""
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    assert committed_gate.distances(preprocess.preprocess_slice(noise, gate.GATE_SIZE).pixels[None])[0] \
        < committed_gate.flag_threshold  # what the statistics alone would say
    assert committed_gate.judge(noise).unusual
    small_mri = np.asarray(Image.fromarray(samples.slice_array("glioma", 0).astype(np.uint8)).resize((100, 100)))
    assert committed_gate.judge(small_mri).unusual  # a real MRI this small is unusual too: a doctor reads it first
    assert committed_gate.metrics["synthetic_non_mri"]["by_side"]["64"]["flagged_or_refused"] == 1.0


def test_a_picture_that_fills_its_frame_is_unusual_though_its_statistics_pass(committed_gate):
    """A grey photograph (a wall, a screen): cropped and normalised, it passes for a brain's statistics."""
    rows, cols = np.mgrid[0:480, 0:640].astype(np.float32)
    photo = 70 + 0.12 * cols + 0.1 * rows + np.random.default_rng(0).normal(0, 8, (480, 640))
    photo = np.clip(photo, 0, 255).astype(np.uint8)
    assert committed_gate.distances(preprocess.preprocess_slice(photo, gate.GATE_SIZE).pixels[None])[0] \
        < committed_gate.flag_threshold  # what the statistics alone would say
    assert gate.fills_the_frame(photo)
    verdict = committed_gate.judge(photo)
    assert verdict.unusual and not verdict.refused
    # An MR slice has air around the head: its bright region leaves the picture's edge dark.
    for label in readers.CLASS_NAMES:
        assert gate.edge_coverage(samples.slice_array(label, 1)) < gate.FRAME_FILL_LIMIT
