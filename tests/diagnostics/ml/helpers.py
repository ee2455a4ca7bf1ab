"""Real slices from the shared data set and tiny model bundles for the ML core's tests."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

DATA_DIR = Path(settings.NEUROFED_DATA_DIR)
KAGGLE = DATA_DIR / "brain-tumor-mri" / "Training"
FIGSHARE = DATA_DIR / "figshare-brain-tumor-seg"

requires_data = pytest.mark.skipif(not KAGGLE.is_dir(), reason="shared MRI data set not present")


def kaggle_file(class_name: str, position: int = 0) -> Path:
    return sorted((KAGGLE / class_name).iterdir())[position]


def kaggle_slice(class_name: str, position: int = 0) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(kaggle_file(class_name, position)).convert("L"))


def dicom_bytes(pixels: np.ndarray, *, modality: str = "MR", instance: int = 1, z: float = 0.0,
                patient_name: str = "Doe^Jane", patient_id: str = "MRN-0042") -> bytes:
    """A minimal but valid DICOM file holding ``pixels`` (the pipeline tests' builder, one frame)."""
    from tests.diagnostics.samples import dataset_bytes, dicom_dataset

    return dataset_bytes(dicom_dataset([pixels], modality=modality, instance=instance, z=z,
                                       patient_name=patient_name, patient_id=patient_id))


def nifti_bytes(volume: np.ndarray, spacing=(0.9, 0.9, 5.0), compress: bool = False) -> bytes:
    import gzip

    import nibabel as nib

    image = nib.Nifti1Image(volume.astype(np.float32), np.diag([*spacing, 1.0]))
    data = image.to_bytes()
    return gzip.compress(data) if compress else data


def build_tiny_bundle(output_dir: Path, size: int = 48) -> Path:
    """Untrained tiny classifier + segmenter exported as real bundles (TFLite + weights + JSON)."""
    import keras

    from diagnostics.ml import data, export, networks, preprocess, readers

    keras.utils.set_random_seed(3)
    output_dir.mkdir(parents=True, exist_ok=True)
    pixels = np.stack([preprocess.preprocess_slice(kaggle_slice(name, i), size).pixels
                       for name in readers.CLASS_NAMES for i in range(2)])
    labels = np.repeat(np.arange(4), 2)
    classification = data.ClassificationData(pixels, labels, np.asarray(["calib", "val"] * 4), [])
    export.export_classifier(networks.build_classifier(size, width=8), output_dir, classification, log=lambda *a: None)
    masks = np.zeros_like(pixels, dtype=bool)
    masks[:, size // 3:size // 2, size // 3:size // 2] = True
    segmentation = data.SegmentationData(pixels, masks, np.arange(8), labels, np.asarray(["calib", "val"] * 4))
    export.export_segmenter(networks.build_segmenter(size, base_filters=4), output_dir, segmentation,
                            log=lambda *a: None, empty_calib=pixels[labels == readers.CLASS_NAMES.index("notumor")])
    return output_dir


def read_json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


_TINY_BUNDLE_DIR: list[Path] = []


def shared_tiny_bundle() -> Path:
    """One tiny bundle per test process (conversion to TFLite takes seconds); treat it as read-only."""
    if not _TINY_BUNDLE_DIR:
        import tempfile

        _TINY_BUNDLE_DIR.append(build_tiny_bundle(Path(tempfile.mkdtemp(prefix="neurofed-tiny-bundle-"))))
    return _TINY_BUNDLE_DIR[0]
