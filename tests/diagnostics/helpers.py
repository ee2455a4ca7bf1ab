"""Small helpers shared by the diagnostics tests."""

from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from diagnostics import services
from diagnostics.models.scans import Scan
from hospitals.models import Patient


def patient_of(user, hospital) -> Patient:
    return Patient.objects.get(hospital=hospital, user=user)


def upload(client, hospital, data: bytes, name: str = "scan.jpg", **fields):
    return client.post(
        f"/api/v1/hospitals/{hospital.slug}/scans/",
        {"file": SimpleUploadedFile(name, data), **fields},
        format="multipart",
    )


def stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def finish(scan: Scan, label: str = "glioma", confidence: float = 0.9, *, mask=True, heatmap=True,
           slice_index: int = 0, tumour_slices=(), unusual=False):
    """Take a queued scan through the worker's services as the task would, with a given result.

    For a volume, `slice_index` is the analysed slice and `tumour_slices` those read as `label`; the
    others read as no tumour.
    """
    rest = (1.0 - confidence) / 3
    probabilities = {name: rest for name in ("glioma", "meningioma", "notumor", "pituitary")}
    probabilities[label] = confidence
    shape = (scan.height, scan.width)
    mask_array = np.zeros(shape, dtype=bool)
    mask_array[10:30, 20:50] = True
    heat = np.zeros(shape, dtype=np.float32)
    heat[5:40, 10:60] = 1.0
    from diagnostics.analysis import heatmap_png

    services.start_analysis(scan.id)
    return services.record_diagnosis(scan.id, services.AnalysisResult(
        label=label, probabilities=probabilities, model_version_id=None, tumour_area_px=600.0,
        slice_index=slice_index, slices_analysed=scan.slice_count,
        per_slice=[
            {"slice": i, "label": label if i in tumour_slices else "notumor",
             "tumour_probability": 0.9 if i in tumour_slices else 0.05, "tumour_area_mm2": None}
            for i in range(scan.slice_count)
        ] if scan.slice_count > 1 else [],
        bbox={"top": 10, "left": 20, "height": 20, "width": 30}, timings={"model_ms": 12.0},
        mask_png=services.encode_png(mask_array.astype(np.uint8) * 255) if mask else None,
        heatmap_png=heatmap_png(heat) if heatmap else None,
        input_distance=900.0 if unusual else 120.0, unusual_image=unusual,
    ))


def multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    """A multipart/form-data body built by hand, so a file name reaches the server exactly as given."""
    import secrets

    boundary = "neurofed" + secrets.token_hex(8)
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (file_name, data) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{file_name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def upload_raw(client, hospital, data: bytes, name: str, **fields):
    body, content_type = multipart(fields, {"file": (name, data)})
    return client.generic("POST", f"/api/v1/hospitals/{hospital.slug}/scans/", body, content_type=content_type)


def register_classifier(folder, version: str, metrics: dict):
    """A registered classifier version whose bundle is a stand-in file `<version>.json` in `folder`: the
    registry only checksums it, which is all the promotion tests need."""
    import json

    from diagnostics import registry

    bundle = Path(folder) / f"{version}.json"
    bundle.write_text(json.dumps({"task": "classify", "version": version}))
    return registry.register_model_version(task="classify", version=version, artifact_path=bundle, metrics=metrics)
