"""Model bundles: what a trained network becomes on disk, and how it gets there.

A bundle is a JSON file (``classifier.json`` / ``segmenter.json``) beside the files it names:

- ``*.tflite``: the compiled model served on CPU by ``inference.Predictor``; for the classifier it has
  two outputs, the logits and the last feature maps (for the class activation map); the segmenter's
  holds its weights in float16;
- ``*.weights.npz``: the Keras weights in float16 (``model.get_weights()`` order), for the GPU path,
  for further training and as the starting point of federated runs;
- the JSON itself: architecture arguments, input size, class names, temperature (classifier),
  threshold and minimum component area (segmenter), validation metrics and the preprocessing version.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from neurofed.files import publish, staged

# networks imports Keras (and TensorFlow with it); it is imported where a network is built, so that
# the web process can read a bundle's file list (bundle_files, for the readiness probe) without it.
from . import calibration, data, readers

# Mask components smaller than this share of the model's input are dropped as noise; the smallest
# tumours in the Figshare masks are larger than this.
MIN_COMPONENT_FRACTION = 0.0015
# Lower logit thresholds tried for the outline of a tumour the classifier found but the segmenter, at
# its own threshold, did not (None: no fallback).
FALLBACK_CANDIDATES = (None, -1.0, -2.0, -3.0, -4.0, -6.0, -8.0)
# Mask thresholds tried when calibration no-tumour images are at hand to weigh false outlines, and
# the share of those images that must keep an empty mask (the product's target).
THRESHOLD_CANDIDATES = (1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -1.5, -2.0, -3.0)
EMPTY_RATE_FLOOR = 0.95


def tflite_bytes(model, input_size: int, outputs_fn=None, float16_weights: bool = False) -> bytes:
    """Compile a Keras model (inputs (B, S, S, 1) float) to a TFLite flatbuffer with a dynamic batch.

    ``float16_weights`` stores the weights in half precision (half the file); the interpreter widens
    them once when it loads the model and computes in float32 as before.
    """
    import tensorflow as tf

    outputs_fn = outputs_fn or (lambda x: model(x, training=False))
    function = tf.function(outputs_fn, input_signature=[tf.TensorSpec([None, input_size, input_size, 1], tf.float32)])
    # No trackable object: the converter then freezes the variables into constants. With one, it keeps
    # READ_VARIABLE ops whose variables the interpreter never initialises (NaN outputs under XNNPACK).
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()])
    if float16_weights:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def save_weights_npz(model, path: Path) -> None:
    weights = model.get_weights()
    np.savez_compressed(path, **{f"w{i:03d}": w.astype(np.float16) for i, w in enumerate(weights)})


def load_weights_npz(model, path: Path) -> None:
    with np.load(path) as archive:
        model.set_weights([archive[f"w{i:03d}"].astype(np.float32) for i in range(len(archive.files))])


def _write_bundle(staging: Path, output_dir: Path, name: str, bundle: dict) -> dict:
    """Write the bundle JSON beside its staged artefacts and swap them all in, the JSON last.

    Until then the previous bundle in ``output_dir`` is untouched: an export that fails or is interrupted
    while the files are made (minutes) leaves it whole, not a mix of old and new.
    """
    (staging / f"{name}.json").write_text(json.dumps(bundle, indent=2, sort_keys=True))
    publish(staging, output_dir, last=f"{name}.json")
    return {**bundle, "bundle_path": str(output_dir / f"{name}.json")}


def classifier_logits(model, x: np.ndarray, test_time_flip: bool) -> np.ndarray:
    """Logits for uint8 images; with ``test_time_flip`` the mean over the image and its mirror image
    (brains are near-symmetric and training used flips, so the mirror is an equally valid view)."""
    from .training import predict_logits

    logits = predict_logits(model, x)
    if test_time_flip:
        logits = (logits + predict_logits(model, np.ascontiguousarray(x[:, :, ::-1]))) / 2.0
    return logits


def classifier_validation_metrics(logits: np.ndarray, labels: np.ndarray, temperature: float) -> dict:
    from sklearn.metrics import f1_score

    predicted = logits.argmax(axis=1)
    return {
        "images": int(len(labels)),
        "accuracy": float((predicted == labels).mean()),
        "macro_f1": float(f1_score(labels, predicted, average="macro")),
        "ece_uncalibrated": calibration.expected_calibration_error(calibration.softmax(logits), labels),
        "ece": calibration.expected_calibration_error(calibration.softmax(logits, temperature), labels),
        "nll": calibration.negative_log_likelihood(logits, labels, temperature),
    }


def export_classifier(model, output_dir: Path, dataset: "data.ClassificationData", log=print) -> dict:
    """Fit the temperature on the calibration split, measure the validation split, write the bundle."""
    output_dir = Path(output_dir)
    input_size = int(model.input_shape[1])
    x_calib, y_calib = dataset.subset("calib")
    x_val, y_val = dataset.subset("val")
    # Whether to average over the mirror image is decided on the calibration split (by calibrated
    # log-likelihood), never on the validation split that the reported figures come from.
    candidates = {}
    for flip in (False, True):
        logits = classifier_logits(model, x_calib, flip)
        temperature = calibration.fit_temperature(logits, y_calib)
        candidates[flip] = (calibration.negative_log_likelihood(logits, y_calib, temperature), temperature)
    test_time_flip = candidates[True][0] < candidates[False][0]
    temperature = candidates[test_time_flip][1]
    metrics = classifier_validation_metrics(classifier_logits(model, x_val, test_time_flip), y_val, temperature)
    metrics["calibration_images"] = int(len(y_calib))
    log(f"calibration NLL plain {candidates[False][0]:.4f}, with mirror {candidates[True][0]:.4f}; "
        f"test_time_flip={test_time_flip}, temperature {temperature:.3f}; validation {metrics}")
    from . import networks

    cam_model = networks.classifier_with_features(model)
    width = int(model.get_layer(networks.LOGITS_LAYER).input.shape[-1]) // 4
    with staged(output_dir, "classifier") as staging:
        (staging / "classifier.tflite").write_bytes(tflite_bytes(cam_model, input_size))
        save_weights_npz(model, staging / "classifier.weights.npz")
        return _write_bundle(staging, output_dir, "classifier", {
            "task": "classify", "classes": list(readers.CLASS_NAMES), "input_size": input_size,
            "architecture": {"builder": "build_classifier", "width": width}, "temperature": temperature,
            "test_time_flip": bool(test_time_flip),
            "tflite": "classifier.tflite", "keras_weights": "classifier.weights.npz",
            "preprocess_version": data.PREPROCESS_VERSION, "validation_metrics": metrics,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        })


def empty_mask_rate(logits: np.ndarray, threshold: float, min_area: int, *, fallback: float | None = None,
                    classified_notumor: np.ndarray | None = None) -> float:
    """Share of no-tumour images (logits (N, S, S)) whose mask at ``threshold`` stays empty.

    With ``classified_notumor`` (the classifier's verdict on each image) the rate is the one patients
    see: an image the classifier calls "notumor" never gets an outline, and one it calls a tumour gets
    the predictor's mask, fallback included. Without it, the segmenter's own rate (no fallback).
    """
    from .inference import tumour_mask

    if classified_notumor is None:  # the segmenter alone: nothing asks for the fallback
        classified_notumor, fallback = np.zeros(len(logits), bool), None
    return float(np.mean([gated or not tumour_mask(l, threshold, min_area, fallback).any()
                          for l, gated in zip(logits, classified_notumor)]))


def classified_notumor(classifier_bundle_path: Path, pixels: np.ndarray) -> np.ndarray:
    """Whether the classifier bundle, as served (its mirror averaging included), calls each uint8 image
    "notumor"; ``pixels`` preprocessed at the bundle's input size.

    Raises ``ValueError`` when the images are not of that size or the bundle has no "notumor" class.
    """
    from .inference import load_keras

    bundle_path = Path(classifier_bundle_path)
    bundle = json.loads(bundle_path.read_text())
    if pixels.shape[1:3] != (bundle["input_size"], bundle["input_size"]):
        raise ValueError(f"{bundle_path}: takes {bundle['input_size']} px images, not {pixels.shape[1]} px")
    if "notumor" not in bundle["classes"]:
        raise ValueError(f"{bundle_path}: has no 'notumor' class")
    model, _ = load_keras(bundle, bundle_path.parent)
    logits = classifier_logits(model, pixels, bool(bundle.get("test_time_flip")))
    return logits.argmax(axis=1) == bundle["classes"].index("notumor")


def choose_mask_thresholds(tumour_logits: np.ndarray, tumour_masks: np.ndarray, empty_logits: np.ndarray | None,
                           min_area: int, log=print,
                           empty_classified_notumor: np.ndarray | None = None) -> tuple[float, float | None]:
    """The segmenter's (mask threshold, fallback threshold) from calibration logits (N, S, S).

    Every Figshare slice holds a tumour, so the classifier's go-ahead for the fallback is taken as given
    here; evaluate_model measures it with the classifier deciding. Without ``empty_logits`` (no-tumour
    images) the mask threshold stays at 0: nothing would weigh the false outlines a lower one brings.
    With ``empty_classified_notumor`` (the classifier's verdicts on those images) the empty-mask floor
    holds for the masks as served behind the classifier; without, for the segmenter alone.
    """
    from .inference import tumour_mask
    from .metrics import dice

    has_empties = empty_logits is not None and len(empty_logits) > 0
    thresholds = THRESHOLD_CANDIDATES if has_empties else (0.0,)

    def tumour_dice(threshold, fallback):
        return float(np.mean([dice(tumour_mask(l, threshold, min_area, fallback), truth)
                              for l, truth in zip(tumour_logits, tumour_masks)]))

    pairs = [(t, f) for t in thresholds for f in FALLBACK_CANDIDATES if f is None or f < t]
    if not has_empties:
        rates = {pair: 1.0 for pair in pairs}
    elif empty_classified_notumor is None:
        alone = {t: empty_mask_rate(empty_logits, t, min_area) for t in thresholds}
        rates = {(t, f): alone[t] for t, f in pairs}
    else:
        rates = {(t, f): empty_mask_rate(empty_logits, t, min_area, fallback=f,
                                         classified_notumor=empty_classified_notumor) for t, f in pairs}
    allowed = [pair for pair in pairs if rates[pair] >= EMPTY_RATE_FLOOR]
    if not allowed:
        highest = max(thresholds)
        allowed = [pair for pair in pairs if pair[0] == highest]
    scores = {pair: tumour_dice(*pair) for pair in allowed}
    # Ties go to the higher threshold, then to no fallback, then to the higher fallback.
    threshold, fallback = max(scores, key=lambda k: (round(scores[k], 6), k[0], k[1] is None, k[1] or 0.0))
    log(f"empty-mask rate of the calibration no-tumour images ({'as served' if empty_classified_notumor is not None else 'segmenter alone'}) "
        "by threshold/fallback: " + ", ".join(f"{t}/{f}: {r:.3f}" for (t, f), r in rates.items()))
    log("mean tumour-slice Dice on the calibration blocks (threshold/fallback): "
        + ", ".join(f"{t}/{f}: {s:.4f}" for (t, f), s in scores.items()) + f" -> {threshold}/{fallback}")
    return threshold, fallback


def export_segmenter(model, output_dir: Path, dataset: "data.SegmentationData", log=print,
                     empty_val: np.ndarray | None = None, empty_calib: np.ndarray | None = None,
                     test_time_flip: bool = True, empty_calib_notumor: np.ndarray | None = None,
                     empty_val_notumor: np.ndarray | None = None) -> dict:
    """Choose the mask thresholds on the calibration data, measure Dice on the validation blocks at
    model resolution and write the bundle.

    The fallback threshold is chosen on the calibration blocks' tumour slices. The mask threshold
    itself moves (from logit 0) only when ``empty_calib`` (calibration no-tumour images) is given: a
    lower one finds more small tumours and outlines more healthy brains. The choice is the best mean
    Dice on the tumour slices among the thresholds that leave at least ``EMPTY_RATE_FLOOR`` of the
    no-tumour images empty (the highest threshold if none does). With ``empty_calib_notumor`` (the
    serving classifier's "notumor" verdicts on those images) the floor is for the masks patients see,
    behind the classifier; ``empty_val_notumor`` likewise adds that served rate to the figures.

    ``test_time_flip`` asks the predictor to average each image's mask logits with its mirror image's;
    the thresholds are chosen and the figures measured on exactly the logits the predictor will use.
    """
    from . import networks
    from .metrics import segmentation_metrics
    from .training import _with_channel

    output_dir = Path(output_dir)
    input_size = int(model.input_shape[1])
    min_area = max(1, int(round(MIN_COMPONENT_FRACTION * input_size * input_size)))
    val = dataset.splits == "val"
    from .inference import TFLiteRunner, tumour_mask

    with staged(output_dir, "segmenter") as staging:
        # The served file holds float16 weights (half the size; the interpreter computes in float32), so
        # the thresholds are chosen and the figures measured on that very file's logits.
        served = staging / "segmenter.tflite"
        served.write_bytes(tflite_bytes(model, input_size, float16_weights=True))
        runner = TFLiteRunner(served, os.cpu_count() or 1)

        def mask_logits(pixels):
            x = _with_channel(pixels).astype(np.float32)
            out = np.concatenate([runner(x[i:i + 32])[0] for i in range(0, len(x), 32)])
            if not test_time_flip:
                return out
            mirrored = np.concatenate([runner(np.ascontiguousarray(x[i:i + 32, :, ::-1]))[0] for i in range(0, len(x), 32)])
            return (out + mirrored[:, :, ::-1]) / 2.0

        calib = dataset.splits == "calib"
        threshold, fallback = 0.0, None
        if calib.any():
            empty_logits = mask_logits(empty_calib)[..., 0] if empty_calib is not None and len(empty_calib) else None
            threshold, fallback = choose_mask_thresholds(mask_logits(dataset.pixels[calib])[..., 0],
                                                         dataset.masks[calib], empty_logits, min_area, log=log,
                                                         empty_classified_notumor=empty_calib_notumor)

        logits = mask_logits(dataset.pixels[val])
        predicted = np.stack([tumour_mask(l[..., 0], threshold, min_area, fallback) for l in logits])
        metrics = segmentation_metrics(predicted, dataset.masks[val])
        if empty_val is not None and len(empty_val):
            empty_logits = mask_logits(empty_val)[..., 0]
            metrics["empty_mask_rate_notumor"] = empty_mask_rate(empty_logits, threshold, min_area)
            if empty_val_notumor is not None:
                metrics["empty_mask_rate_notumor_served"] = empty_mask_rate(
                    empty_logits, threshold, min_area, fallback=fallback, classified_notumor=empty_val_notumor)
            metrics["notumor_images"] = int(len(empty_val))
        metrics["resolution"] = "model input"
        metrics["empty_mask_floor"] = "as served" if empty_calib_notumor is not None else "segmenter alone"
        log(f"segmenter validation {metrics}")
        save_weights_npz(model, staging / "segmenter.weights.npz")
        return _write_bundle(staging, output_dir, "segmenter", {
            "task": "segment", "input_size": input_size, "threshold_logit": threshold, "min_component_px": min_area,
            "fallback_threshold_logit": fallback,
            "test_time_flip": bool(test_time_flip),
            "architecture": networks.segmenter_architecture(model),
            "tflite": "segmenter.tflite", "keras_weights": "segmenter.weights.npz",
            "preprocess_version": data.PREPROCESS_VERSION, "validation_metrics": metrics,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        })


def segmenter_ensemble_from_bundles(bundle_paths: list, input_size: int):
    """One network averaging the logits of the segmenters in ``bundle_paths``, with their weights.

    A bundle that is itself an ensemble adds each of its members, not their average.

    Raises ``ValueError`` naming the file when one is not a segmenter bundle for ``input_size`` px
    input made by this preprocessing.
    """
    from . import networks
    from .inference import load_keras

    members = []
    for path in map(Path, bundle_paths):
        try:
            bundle = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: not a readable model bundle ({error})") from error
        if not isinstance(bundle, dict) or bundle.get("task") != "segment":
            raise ValueError(f"{path}: not a segmenter bundle")
        if bundle.get("input_size") != input_size or bundle.get("preprocess_version") != data.PREPROCESS_VERSION:
            raise ValueError(f"{path}: made for {bundle.get('input_size')} px input preprocessed by version "
                             f"{bundle.get('preprocess_version')}, not {input_size} px by {data.PREPROCESS_VERSION}")
        # An ensemble given as a member contributes its own members, so every U-Net weighs the same.
        members.extend(networks.segmenter_members(load_keras(bundle, path.parent)[0]))
    model = networks.build_segmenter_ensemble(input_size, [networks.segmenter_architecture(m) for m in members])
    model.set_weights([w for member in members for w in member.get_weights()])
    return model


def bundle_files(bundle_path: Path) -> list[Path]:
    """The bundle JSON and every artefact it names, in a fixed order (for checksums and copying)."""
    bundle_path = Path(bundle_path)
    bundle = json.loads(bundle_path.read_text())
    return [bundle_path] + [bundle_path.parent / bundle[key] for key in ("tflite", "keras_weights") if key in bundle]


def install_bundle(bundle: dict, model_dir: Path, log=print) -> Path:
    """Copy a bundle and its artefacts into ``model_dir`` (the committed baseline weights), swapping them
    in together at the end so that a failed copy leaves the installed bundle whole.

    Whether a registered model version is stored there is the caller's question (``train_model`` asks
    it before training): this module knows files, not the registry.
    """
    model_dir = Path(model_dir)
    source = Path(bundle["bundle_path"])
    with staged(model_dir, source.stem) as staging:
        for path in bundle_files(source):
            shutil.copy2(path, staging / path.name)
        publish(staging, model_dir, last=source.name)
    installed = model_dir / source.name
    for path in bundle_files(installed):
        log(f"installed {path}")
    return installed
