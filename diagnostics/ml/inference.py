"""The inference API shared by the Celery worker, the ``predict`` command and the benchmarks.

    predictor = Predictor.from_model_dir(settings.MODEL_DIR)       # once per process
    result = predictor.predict(slice2d, pixel_spacing_mm=(0.5, 0.5))
    result.label, result.probabilities, result.mask, result.tumour_area_px, result.area_mm2,
    result.bbox, result.heatmap, result.timings_ms
    results = predictor.predict_batch([slice_a, slice_b, ...])

``slice2d`` is any 2-D grayscale array from ``readers.decode_scan``; every map in the result (mask,
heatmap) has the input's shape. Two serving paths exist: TFLite (``ai_edge_litert``; compiled, CPU, the
default when no GPU is visible) and Keras under ``tf.function`` (used when TensorFlow sees a GPU, or on
request with ``backend="keras"``). Both are loaded from a bundle (see ``export``) and agree to within
float rounding.

The mask follows the classifier's label: an image classified "notumor" gets an empty mask whatever
the segmenter outputs, so a result never reads "no tumour" beside an outline; for any other label the
segmenter's mask is used, with the bundle's fallback threshold when it comes out empty.

A bundle may ask for test-time mirroring (``"test_time_flip": true``): the network then also sees the
mirror image in the same call and the outputs are averaged (maps mirrored back), which steadies the
answer for a few milliseconds more.

The heatmap is the class activation map of the predicted class (Zhou et al., CVPR 2016): the
classifier ends in global average pooling and one dense layer, so weighting its last feature maps by
that class's dense weights gives Grad-CAM's map up to a positive scale without a backward pass.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from . import calibration, networks, preprocess


@dataclass
class Prediction:
    label: str
    probabilities: dict[str, float]
    mask: np.ndarray  # bool, input shape
    tumour_area_px: int
    area_mm2: float | None
    bbox: dict[str, int] | None  # top, left, height, width in input pixels; None when no tumour
    heatmap: np.ndarray  # float32 0..1, input shape
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def tumour_found(self) -> bool:
        return self.tumour_area_px > 0

    def summary(self) -> dict:
        """JSON-ready fields (no arrays)."""
        return {"label": self.label, "probabilities": self.probabilities, "tumour_found": self.tumour_found,
                "tumour_area_px": self.tumour_area_px, "tumour_area_mm2": self.area_mm2, "bbox": self.bbox,
                "timings_ms": self.timings_ms}


def clean_mask(mask: np.ndarray, min_component_px: int) -> np.ndarray:
    """Drop connected components smaller than ``min_component_px`` (speckle, not tumour)."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return mask
    labels, count = ndimage.label(mask)
    areas = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
    keep = np.flatnonzero(areas >= min_component_px) + 1
    return np.isin(labels, keep)


def tumour_outline(logits: np.ndarray, threshold: float, min_component_px: int,
                   fallback_threshold: float | None = None) -> tuple[np.ndarray, float]:
    """The segmenter's mask and the logit it was cut at: logits above ``threshold``, without speckle.

    With ``fallback_threshold``, a mask that comes out empty is replaced by the region around the most
    likely pixel where the logits exceed that lower threshold. Callers pass it only when the classifier
    has found a tumour: a small tumour often stays just under the segmenter's threshold, and a diagnosis
    of "tumour" with no outline leaves the doctor nothing to check or correct.
    """
    mask = clean_mask(logits > threshold, min_component_px)
    if mask.any() or fallback_threshold is None or logits.max() <= fallback_threshold:
        return mask, threshold
    regions, _ = ndimage.label(logits > fallback_threshold)
    return regions == regions[np.unravel_index(int(np.argmax(logits)), logits.shape)], fallback_threshold


def tumour_mask(logits: np.ndarray, threshold: float, min_component_px: int,
                fallback_threshold: float | None = None) -> np.ndarray:
    """``tumour_outline``'s mask alone."""
    return tumour_outline(logits, threshold, min_component_px, fallback_threshold)[0]


def outline_at_input(logits: np.ndarray, model_mask: np.ndarray, cut: float, box: preprocess.CropBox) -> np.ndarray:
    """A model-space outline drawn on the input's pixel grid from the logits it was cut from.

    Enlarging the binary mask gives the outline the staircase of the model's coarser grid; the logits
    vary smoothly, so enlarging them and cutting again at the same logit puts the edge between model
    pixels. Only the kept regions, grown by one model pixel so that their edge can move, are drawn:
    speckle dropped in model space stays dropped.
    """
    if not model_mask.any():
        return np.zeros(box.input_shape, bool)
    support = preprocess.paste_to_input(ndimage.binary_dilation(model_mask).astype(np.float32), box, binary=True)
    return support & (preprocess.paste_to_input(logits - cut, box) > 0)


def bounding_box(mask: np.ndarray) -> dict[str, int] | None:
    if not mask.any():
        return None
    rows, cols = np.nonzero(mask)
    return {"top": int(rows.min()), "left": int(cols.min()),
            "height": int(rows.max() - rows.min() + 1), "width": int(cols.max() - cols.min() + 1)}


def class_activation_maps(features: np.ndarray, dense_kernel: np.ndarray, class_indices: np.ndarray) -> np.ndarray:
    """(B, h, w, C) feature maps and (C, K) dense weights -> (B, h, w) maps in 0..1 for the chosen classes."""
    weights = dense_kernel[:, class_indices].T  # (B, C)
    maps = np.maximum(np.einsum("bhwc,bc->bhw", features, weights), 0.0)
    peak = maps.reshape(len(maps), -1).max(axis=1)[:, None, None]
    return np.where(peak > 0, maps / np.maximum(peak, 1e-12), 0.0).astype(np.float32)


def _with_mirror(batch: np.ndarray) -> np.ndarray:
    return np.concatenate([batch, batch[:, :, ::-1]])


def _mirror_mean(output: np.ndarray, count: int, spatial: bool) -> np.ndarray:
    """Mean of the outputs for the images and for their mirror images (mirrored back if spatial)."""
    mirrored = output[count:, :, ::-1] if spatial else output[count:]
    return (output[:count] + mirrored) / 2.0


def gpu_available() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


class TFLiteRunner:
    """One interpreter per batch size, so a batch of 16 never re-plans the batch-1 interpreter."""

    def __init__(self, model_path: Path, num_threads: int):
        self.model_content = Path(model_path).read_bytes()
        self.num_threads = num_threads
        self.interpreters = {}

    def _interpreter(self, batch: int):
        if batch not in self.interpreters:
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_content=self.model_content, num_threads=self.num_threads)
            input_index = interpreter.get_input_details()[0]["index"]
            shape = list(interpreter.get_input_details()[0]["shape"])
            interpreter.resize_tensor_input(input_index, [batch] + shape[1:])
            interpreter.allocate_tensors()
            # Output order in a converted flatbuffer is not guaranteed; sort by rank so the logits
            # (rank 2) come before the feature maps (rank 4).
            outputs = sorted(interpreter.get_output_details(), key=lambda d: len(d["shape"]))
            self.interpreters[batch] = (interpreter, input_index, [d["index"] for d in outputs])
        return self.interpreters[batch]

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        interpreter, input_index, output_indices = self._interpreter(len(batch))
        interpreter.set_tensor(input_index, batch.astype(np.float32))
        interpreter.invoke()
        return [interpreter.get_tensor(i).copy() for i in output_indices]


class _KerasRunner:
    """A Keras model compiled with ``tf.function`` (runs on a GPU when TensorFlow has one)."""

    def __init__(self, model):
        import tensorflow as tf

        self.model = model
        self.function = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        outputs = self.function(batch.astype(np.float32))
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [np.asarray(o) for o in outputs]


def load_keras(bundle: dict, bundle_dir: Path):
    """The bundle's network rebuilt in Keras from its architecture and float16 weights: ``(model,
    served model)``, where a classifier is served with its feature maps as a second output."""
    from .export import load_weights_npz

    architecture = dict(bundle["architecture"])
    builder = getattr(networks, architecture.pop("builder"))
    model = builder(bundle["input_size"], **architecture)
    load_weights_npz(model, bundle_dir / bundle["keras_weights"])
    if bundle["task"] == "classify":
        return model, networks.classifier_with_features(model)
    return model, model


# What a bundle must name, whichever backend serves it, with the JSON types it must have.
_BUNDLE_FIELDS = {
    "classifier": {"classes": list, "temperature": (int, float), "input_size": int, "keras_weights": str,
                   "tflite": str},
    "segmenter": {"input_size": int, "tflite": str},
}


def read_bundle(path: Path, kind: str) -> dict:
    """A bundle's JSON, checked for what the predictor reads of it: a damaged or hand-edited one is a
    ValueError that names the field, not a TypeError deep in loading."""
    info = json.loads(Path(path).read_text())
    if not isinstance(info, dict):
        raise ValueError(f"{path} is not a {kind} bundle: it holds a JSON {type(info).__name__}, not an object")
    for name, kinds in _BUNDLE_FIELDS[kind].items():
        value = info.get(name)
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise ValueError(f"{path} is not a usable {kind} bundle: its {name!r} is {value!r}")
    if info["input_size"] <= 0:
        raise ValueError(f"{path} is not a usable {kind} bundle: its input_size is {info['input_size']}")
    if kind == "classifier" and not all(isinstance(name, str) for name in info["classes"]):
        raise ValueError(f"{path} is not a usable classifier bundle: its classes are not names")
    return info


class Predictor:
    """Classifier + segmenter + heatmap for 2-D slices; load once per process, then call ``predict``."""

    def __init__(self, classifier_bundle: str | Path, segmenter_bundle: str | Path | None = None, *,
                 backend: str = "auto", num_threads: int | None = None):
        if backend == "auto":
            backend = "keras" if gpu_available() else "tflite"
        if backend not in ("tflite", "keras"):
            raise ValueError(f"unknown backend {backend!r}")
        self.backend = backend
        self.model_versions: dict = {}  # filled by the registry loader: task -> ModelVersion
        num_threads = num_threads or min(4, os.cpu_count() or 1)
        classifier_bundle = Path(classifier_bundle)
        self.classifier_info = read_bundle(classifier_bundle, "classifier")
        self.classes = list(self.classifier_info["classes"])
        self.temperature = float(self.classifier_info["temperature"])
        self.classify_size = int(self.classifier_info["input_size"])
        with np.load(classifier_bundle.parent / self.classifier_info["keras_weights"]) as weights:
            names = sorted(weights.files)
            # The dense head is the last layer with weights: kernel, then bias.
            self.dense_kernel = weights[names[-2]].astype(np.float32)
        self.segmenter_info = read_bundle(Path(segmenter_bundle), "segmenter") if segmenter_bundle else None
        if backend == "tflite":
            self._classify = TFLiteRunner(classifier_bundle.parent / self.classifier_info["tflite"], num_threads)
            self._segment = (TFLiteRunner(Path(segmenter_bundle).parent / self.segmenter_info["tflite"], num_threads)
                             if segmenter_bundle else None)
        else:
            _, cam_model = load_keras(self.classifier_info, classifier_bundle.parent)
            self._classify = _KerasRunner(cam_model)
            self._segment = (_KerasRunner(load_keras(self.segmenter_info, Path(segmenter_bundle).parent)[1])
                             if segmenter_bundle else None)

    @classmethod
    def from_model_dir(cls, model_dir: str | Path, **kwargs) -> "Predictor":
        model_dir = Path(model_dir)
        segmenter = model_dir / "segmenter.json"
        return cls(model_dir / "classifier.json", segmenter if segmenter.exists() else None, **kwargs)

    def predict(self, slice2d: np.ndarray, pixel_spacing_mm: tuple[float, float] | None = None) -> Prediction:
        return self.predict_batch([slice2d], pixel_spacing_mm)[0]

    def predict_batch(self, slices: list[np.ndarray], pixel_spacing_mm: tuple[float, float] | None = None,
                      ) -> list[Prediction]:
        """Predict a list of slices (any sizes) in one call per network; maps come back at input size."""
        started = time.perf_counter()
        boxes = [preprocess.find_brain_box(s) for s in slices]
        classify_input = np.stack([preprocess.preprocess_slice(s, self.classify_size, b).pixels
                                   for s, b in zip(slices, boxes)])[..., None]
        segment_size = int(self.segmenter_info["input_size"]) if self.segmenter_info else None
        if segment_size == self.classify_size:
            segment_input = classify_input
        elif segment_size:
            segment_input = np.stack([preprocess.preprocess_slice(s, segment_size, b).pixels
                                      for s, b in zip(slices, boxes)])[..., None]
        prepared = time.perf_counter()

        count = len(slices)
        if self.classifier_info.get("test_time_flip"):
            logits, features = self._classify(_with_mirror(classify_input))
            logits, features = _mirror_mean(logits, count, False), _mirror_mean(features, count, True)
        else:
            logits, features = self._classify(classify_input)
        probabilities = calibration.softmax(logits, self.temperature)
        predicted = probabilities.argmax(axis=1)
        classified = time.perf_counter()

        heatmaps = class_activation_maps(features, self.dense_kernel, predicted)
        explained = time.perf_counter()

        outlines = [None] * len(slices)
        if self._segment is not None:
            if self.segmenter_info.get("test_time_flip"):
                mask_logits = _mirror_mean(self._segment(_with_mirror(segment_input))[0], count, True)[..., 0]
            else:
                mask_logits = self._segment(segment_input)[0][..., 0]
            threshold = float(self.segmenter_info.get("threshold_logit", 0.0))
            min_px = int(self.segmenter_info.get("min_component_px", 1))
            fallback = self.segmenter_info.get("fallback_threshold_logit")
            fallback = None if fallback is None else float(fallback)
            notumor = self.classes.index("notumor") if "notumor" in self.classes else -1
            # The outline follows the diagnosis both ways: "no tumour" is never shown with an outline
            # (patients read these results), and a tumour always gets one when the fallback can find it.
            outlines = [tumour_outline(m, threshold, min_px, fallback) if predicted[i] != notumor
                        else (np.zeros(m.shape, bool), threshold) for i, m in enumerate(mask_logits)]
        segmented = time.perf_counter()

        results = []
        for index, (image, box) in enumerate(zip(slices, boxes)):
            heatmap = np.clip(preprocess.paste_to_input(heatmaps[index], box), 0.0, 1.0)
            if outlines[index] is not None:
                mask = outline_at_input(mask_logits[index], *outlines[index], box)
            else:
                mask = np.zeros(box.input_shape, bool)
            area = int(mask.sum())
            area_mm2 = (float(area * pixel_spacing_mm[0] * pixel_spacing_mm[1])
                        if pixel_spacing_mm and area else (0.0 if pixel_spacing_mm else None))
            results.append(Prediction(
                label=self.classes[int(predicted[index])],
                probabilities={name: float(p) for name, p in zip(self.classes, probabilities[index])},
                mask=mask, tumour_area_px=area, area_mm2=area_mm2, bbox=bounding_box(mask), heatmap=heatmap))
        finished = time.perf_counter()
        per_image = 1000.0 / len(slices)
        timings = {"preprocess": (prepared - started) * per_image, "classify": (classified - prepared) * per_image,
                   "heatmap": (explained - classified) * per_image, "segment": (segmented - explained) * per_image,
                   "postprocess": (finished - segmented) * per_image, "total": (finished - started) * per_image}
        timings = {k: round(v, 3) for k, v in timings.items()}
        for result in results:
            result.timings_ms = dict(timings)
        return results
