"""Model bundles for worker tests when no trained weights are installed.

Tiny, untrained networks of the ML core's own architectures, exported by its own export functions
(TFLite + weights + bundle JSON), so the worker loads them through the registry exactly as it loads
trained ones. Their answers are arbitrary but well-formed: the pipeline, not the model, is under test.
"""

from pathlib import Path

import numpy as np

from diagnostics.ml import data, export, networks, preprocess, readers

SIZE = 64


def _examples(count_per_class: int = 4):
    from tests.diagnostics.samples import slice_array

    pixels, labels = [], []
    for index, name in enumerate(readers.CLASS_NAMES):
        for i in range(count_per_class):
            pixels.append(preprocess.preprocess_slice(slice_array(name, i), SIZE).pixels)
            labels.append(index)
    return np.stack(pixels), np.asarray(labels, dtype=np.int64)


def figshare_validation_slices(size: int) -> data.SegmentationData:
    """Four real Figshare slices with their expert masks, preprocessed at ``size``, all as validation."""
    from tests.diagnostics.samples import figshare_case

    pixels, masks = [], []
    for index in (1, 2, 3, 4):
        image, mask, _ = figshare_case(index)
        prepared = preprocess.preprocess_slice(image, size)
        pixels.append(prepared.pixels)
        masks.append(preprocess.crop_mask(mask, prepared.box, size))
    return data.SegmentationData(pixels=np.stack(pixels), masks=np.stack(masks), indices=np.arange(4),
                                 labels=np.asarray(["glioma"] * 4), splits=np.asarray(["val"] * 4))


def build_tiny_bundles(output_dir: Path) -> dict[str, Path]:
    import keras

    keras.utils.set_random_seed(7)
    output_dir.mkdir(parents=True, exist_ok=True)
    pixels, labels = _examples()
    splits = np.asarray(["calib", "val"] * (len(labels) // 2))
    classification = data.ClassificationData(pixels=pixels, labels=labels, splits=splits, manifest=[])
    classifier = export.export_classifier(networks.build_classifier(SIZE, width=8), output_dir, classification,
                                          log=lambda *a: None)
    segmenter = export.export_segmenter(networks.build_segmenter(SIZE, base_filters=4), output_dir,
                                        figshare_validation_slices(SIZE), log=lambda *a: None)
    return {"classify": Path(classifier["bundle_path"]), "segment": Path(segmenter["bundle_path"])}
