"""The worker's half of the pipeline: decrypt a scan, run the active models slice by slice, summarise.

Imported only in the Celery worker (and in embedded mode's in-process tasks): it loads TensorFlow
through the model registry. The models are loaded once per process and kept; TensorFlow places them
on a GPU when it sees one.
"""

import gzip
import io
import logging
import threading
import time

import numpy as np

from diagnostics import services
from diagnostics.decode_check import slice_digest
from hospitals.storage import read_blob

logger = logging.getLogger(__name__)

_predictor = None
_loaded_versions: dict = {}
_predictor_lock = threading.Lock()
BATCH_SLICES = 16


class NoActiveModel(RuntimeError):
    """No usable model version is active (none promoted, or its artefacts fail their checksum)."""


class InvalidModelOutput(RuntimeError):
    """The models returned something that is not a result (NaN probabilities, a label they do not know)."""


def _configure_tensorflow() -> list[str]:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        # Grow into GPU memory as needed instead of taking all of it at start-up.
        tf.config.experimental.set_memory_growth(gpu, True)
    return [gpu.name for gpu in gpus]


def active_versions() -> dict[str, int]:
    """{task: ModelVersion id} of the promoted versions: one indexed query, cheap enough per scan."""
    from diagnostics.models.registry import ModelStatus, ModelVersion

    return dict(ModelVersion.objects.filter(status=ModelStatus.ACTIVE).values_list("task", "id"))


def predictor():
    """(predictor, {task: version id}) of the active models, loaded once per process.

    Reloaded only when a promotion or rollback has changed the active versions since the last scan,
    so workers follow the registry without a restart.
    """
    global _predictor, _loaded_versions
    active = active_versions()
    with _predictor_lock:
        if _predictor is None or active != _loaded_versions:
            from diagnostics import registry

            started = time.perf_counter()
            gpus = _configure_tensorflow()
            try:
                loaded = registry.load_active_predictor()
            except (registry.NoActiveModel, registry.ModelIntegrityError) as error:
                raise NoActiveModel(str(error)) from error
            _predictor = loaded
            # The registry may have just activated the installed baseline; remember what it loaded.
            _loaded_versions = {task: version.pk for task, version in loaded.model_versions.items()
                                if version is not None}
            logger.info("models %s loaded in %.1fs on %s", _loaded_versions, time.perf_counter() - started,
                        ", ".join(gpus) or "CPU")
        return _predictor, dict(_loaded_versions)


def warm_up() -> None:
    try:
        predictor()
    except Exception:
        logger.exception("could not load the active models at start-up; the first scan will try again")


# --- adapter over the ML core's prediction object ---------------------------------------------------


def _get(prediction, *names, default=None):
    for name in names:
        if isinstance(prediction, dict) and name in prediction:
            return prediction[name]
        if hasattr(prediction, name):
            return getattr(prediction, name)
    return default


def _tumour_probability(probabilities: dict) -> float:
    return 1.0 - float(probabilities.get("notumor", 0.0))


def _slice_thickness_mm(data: bytes, kind: str) -> float | None:
    """Distance between slices of a volume, for the volume estimate; None when the file does not say, or
    says what measures no head (readers.plausible_step_mm)."""
    from diagnostics.ml.readers import plausible_step_mm

    step = _stated_slice_step_mm(data, kind)
    return step if step is not None and plausible_step_mm(step) else None


def _stated_slice_step_mm(data: bytes, kind: str) -> float | None:
    try:
        if kind == "nifti":
            from diagnostics.ml.readers import nifti_header, nifti_voxel_sizes_mm

            if data[:2] == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
                    data = stream.read(540)
            header = nifti_header(data)
            sizes = nifti_voxel_sizes_mm(header)
            # After reorientation to RAS the third axis is axial; take the spacing the affine gives it.
            affine = header.get_best_affine()
            axial = int(np.argmax(np.abs(affine[2, :3])))
            return sizes[axial] if sizes is not None and len(sizes) > axial else None
        if kind in ("dicom", "dicom_series"):
            import zipfile

            import pydicom

            from diagnostics.ml.readers import dicom_pixel_measure, dicom_position_along_normal

            if kind == "dicom":
                datasets = [pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)]
            else:
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    # The members the reader takes: a Finder zip's __MACOSX files are no DICOM.
                    datasets = [pydicom.dcmread(io.BytesIO(archive.read(member)), stop_before_pixels=True)
                                for member in archive.infolist()
                                if not member.is_dir() and not member.filename.startswith("__MACOSX")]
            # A series says where each slice lies: the step between neighbours is the spacing, gaps
            # included, which SliceThickness (the slab one slice images) leaves out.
            positions = sorted({round(dicom_position_along_normal(ds), 3) for ds in datasets
                                if ds.get("ImagePositionPatient") is not None})
            if len(positions) == len(datasets) > 1:
                return float(np.median(np.diff(positions)))
            first = datasets[0]
            value = dicom_pixel_measure(first, "SpacingBetweenSlices") or dicom_pixel_measure(first, "SliceThickness")
            return float(value) if value and float(value) > 0 else None
    except Exception:  # a missing thickness only means no volume estimate
        logger.debug("no slice thickness", exc_info=True)
    return None


def _mask_png(mask) -> bytes | None:
    if mask is None:
        return None
    return services.encode_png((np.asarray(mask) > 0).astype(np.uint8) * 255)


def heatmap_png(heatmap) -> bytes | None:
    """A red-to-yellow RGBA overlay: transparent where the classifier paid no attention."""
    if heatmap is None:
        return None
    heat = np.nan_to_num(np.asarray(heatmap, dtype=np.float32))
    peak = float(heat.max())
    heat = heat / peak if peak > 0 else np.zeros_like(heat)
    rgba = np.zeros((*heat.shape, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[..., 1] = np.round(255 * heat).astype(np.uint8)
    rgba[..., 3] = np.round(200 * np.clip(heat * 1.25 - 0.15, 0, 1)).astype(np.uint8)
    return services.encode_png(rgba)


def _bbox(value):
    if value is None:
        return None
    if isinstance(value, dict):
        return {key: int(v) for key, v in value.items()}
    top, left, height, width = (int(v) for v in value)
    return {"top": top, "left": left, "height": height, "width": width}


def analyse(scan) -> services.AnalysisResult:
    """Run the active models over every slice of `scan`, and summarise a volume by its worst slice."""
    started = time.perf_counter()
    data = read_blob(scan.hospital, scan.blob_path, record_type=services.SCAN_BLOB, record_id=scan.id,
                     sha256=scan.blob_sha256)
    decoded = services.decode_stored(data)  # PHI in a DICOM header stays in `decoded.patient_identifiers`
    decoded_at = time.perf_counter()
    model, versions = predictor()
    loaded_at = time.perf_counter()
    spacing = decoded.pixel_spacing_mm or scan.pixel_spacing_mm
    predictions = []
    # A volume goes through in batches: one call per network per batch, with memory bounded.
    for start in range(0, len(decoded.slices), BATCH_SLICES):
        predictions.extend(model.predict_batch(decoded.slices[start:start + BATCH_SLICES], spacing))
    predicted_at = time.perf_counter()

    per_slice = []
    for index, prediction in enumerate(predictions):
        probabilities = {k: float(v) for k, v in _get(prediction, "probabilities").items()}
        per_slice.append({
            "slice": index,
            "label": _get(prediction, "label"),
            "tumour_probability": round(_tumour_probability(probabilities), 4),
            "tumour_area_mm2": _get(prediction, "area_mm2", "tumour_area_mm2"),
        })
    for entry, prediction in zip(per_slice, predictions):
        probabilities = _get(prediction, "probabilities")
        if not all(np.isfinite(float(v)) for v in probabilities.values()) or entry["label"] not in probabilities:
            # Never store or show a result the model could not really produce.
            raise InvalidModelOutput(f"the models returned invalid probabilities for slice {entry['slice']}")
    worst = max(range(len(predictions)), key=lambda i: per_slice[i]["tumour_probability"])
    chosen = predictions[worst]
    probabilities = {k: float(v) for k, v in _get(chosen, "probabilities").items()}

    volume = None
    if len(predictions) > 1:
        thickness = _slice_thickness_mm(data, scan.kind)
        areas = [entry["tumour_area_mm2"] or 0.0 for entry in per_slice if entry["tumour_probability"] >= 0.5]
        if thickness and areas and all(entry["tumour_area_mm2"] is not None for entry in per_slice):
            volume = float(sum(areas) * thickness)

    verdict = services.gate_verdict(decoded.slices[worst])
    mask_png = _mask_png(_get(chosen, "mask"))
    heat_png = heatmap_png(_get(chosen, "heatmap"))
    finished = time.perf_counter()
    model_timings = {}
    for prediction in predictions:
        for stage, ms in (_get(prediction, "timings_ms", "timings", default={}) or {}).items():
            model_timings[stage] = model_timings.get(stage, 0.0) + float(ms)
    timings = {
        "decode_ms": round((decoded_at - started) * 1000, 1),
        "model_load_wait_ms": round((loaded_at - decoded_at) * 1000, 1),
        "model_ms": round((predicted_at - loaded_at) * 1000, 1),
        "encode_ms": round((finished - predicted_at) * 1000, 1),
        "total_ms": round((finished - started) * 1000, 1),
        **{f"model_{stage}" if not stage.startswith("model") else stage: round(ms, 1)
           for stage, ms in model_timings.items()},
    }
    return services.AnalysisResult(
        label=str(_get(chosen, "label")),
        probabilities=probabilities,
        model_version_id=versions.get("classify"),
        segmenter_version_id=versions.get("segment"),
        slice_index=worst,
        slices_analysed=len(predictions),
        per_slice=per_slice if len(per_slice) > 1 else [],
        tumour_area_px=_get(chosen, "tumour_area_px"),
        tumour_area_mm2=_get(chosen, "area_mm2", "tumour_area_mm2"),
        tumour_volume_mm3=volume,
        bbox=_bbox(_get(chosen, "bbox")),
        timings=timings,
        mask_png=mask_png,
        heatmap_png=heat_png,
        input_distance=round(verdict.distance, 1),
        unusual_image=verdict.unusual,
        slice_digest=slice_digest(scan.hospital, decoded.slices[worst]),
    )
