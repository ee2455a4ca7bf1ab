"""Bundle writes: a failed export or install leaves the bundle already there whole."""
import shutil

import numpy as np
import pytest

from diagnostics.ml import data, export, networks

from .helpers import requires_data, shared_tiny_bundle

pytestmark = requires_data
SIZE = 48


def _contents(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_a_segmenter_export_that_fails_midway_leaves_the_previous_bundle_whole(tmp_path):
    import keras

    from tests.diagnostics.bundles import figshare_validation_slices

    keras.utils.set_random_seed(5)
    slices = figshare_validation_slices(SIZE)
    export.export_segmenter(networks.build_segmenter(SIZE, base_filters=4), tmp_path, slices,
                            log=lambda *a: None, test_time_flip=False)
    before = _contents(tmp_path)
    # No validation slices: the export compiles and runs the new TFLite file, then fails measuring Dice.
    calibration_only = data.SegmentationData(slices.pixels, slices.masks, slices.indices, slices.labels,
                                             np.asarray(["calib"] * len(slices.labels)))
    with pytest.raises(ValueError):
        export.export_segmenter(networks.build_segmenter(SIZE, base_filters=4), tmp_path, calibration_only,
                                log=lambda *a: None, test_time_flip=False)
    assert _contents(tmp_path) == before  # no new artefact beside the old JSON, no staging folder left


def test_an_install_that_fails_midway_leaves_the_installed_bundle_whole(tmp_path):
    model_dir, broken = tmp_path / "weights", tmp_path / "broken"
    export.install_bundle({"bundle_path": str(shared_tiny_bundle() / "classifier.json")}, model_dir,
                          log=lambda *a: None)
    before = _contents(model_dir)
    shutil.copytree(shared_tiny_bundle(), broken)
    (broken / "classifier.json").write_text((broken / "classifier.json").read_text().replace('"temperature"',
                                                                                           '"temperature_"'))
    (broken / "classifier.weights.npz").unlink()
    with pytest.raises(FileNotFoundError):
        export.install_bundle({"bundle_path": str(broken / "classifier.json")}, model_dir, log=lambda *a: None)
    assert _contents(model_dir) == before


def test_an_install_swaps_in_every_file_of_the_bundle(tmp_path):
    model_dir = tmp_path / "weights"
    installed = export.install_bundle({"bundle_path": str(shared_tiny_bundle() / "segmenter.json")}, model_dir,
                                      log=lambda *a: None)
    assert installed == model_dir / "segmenter.json"
    assert _contents(model_dir) == {path.name: path.read_bytes()
                                    for path in export.bundle_files(shared_tiny_bundle() / "segmenter.json")}
