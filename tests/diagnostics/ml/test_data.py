"""Cached training data: a cache file is whole or absent, and only ever the data it was built from."""
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diagnostics.ml import data, readers
from tests.diagnostics.ml.helpers import DATA_DIR as SHARED


def test_a_cache_write_that_fails_leaves_no_part_file_behind(tmp_path):
    def write_then_fail(fh):
        fh.write(b"half a cache")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        data._write_atomically(tmp_path / "cache" / "kaggle_manifest.json", write_then_fail)
    assert list((tmp_path / "cache").iterdir()) == []


def small_data_set(root: Path, per_class: int) -> Path:
    """A data folder of the shared layout holding the first `per_class` Kaggle images of each class and
    three Figshare slices, copied so their times can be changed."""
    for class_name in readers.CLASS_NAMES:
        folder = root / "brain-tumor-mri" / "Training" / class_name
        folder.mkdir(parents=True)
        source = sorted((SHARED / "brain-tumor-mri" / "Training" / class_name).iterdir())[:per_class]
        for path in source:
            shutil.copy2(path, folder / path.name)
    figshare = root / "figshare-brain-tumor-seg"
    (figshare / "images").mkdir(parents=True)
    (figshare / "masks").mkdir()
    rows = readers.list_figshare_slices(SHARED / "figshare-brain-tumor-seg")[:3]
    with open(figshare / "labels.csv", "w") as handle:
        handle.write("index,label\n" + "".join(f"{s.index},{s.label}\n" for s in rows))
    for s in rows:
        shutil.copy2(s.image_path, figshare / "images" / s.image_path.name)
        shutil.copy2(s.mask_path, figshare / "masks" / s.mask_path.name)
    return root


def test_a_cache_shared_by_two_data_folders_serves_each_its_own_images(tmp_path):
    cache = tmp_path / "cache"
    small = small_data_set(tmp_path / "small", per_class=3)
    larger = small_data_set(tmp_path / "larger", per_class=5)
    assert len(data.kaggle_dataset(small, cache, 32, workers=1).manifest) == 12
    assert len(data.kaggle_dataset(larger, cache, 32, workers=1).manifest) == 20
    again = data.kaggle_dataset(small, cache, 32, workers=1)
    assert len(again.manifest) == 12 and again.pixels.shape == (12, 32, 32)


def test_images_added_to_a_data_folder_are_not_left_out_by_its_cache(tmp_path):
    cache = tmp_path / "cache"
    folder = small_data_set(tmp_path / "data", per_class=3)
    assert len(data.kaggle_manifest(folder, cache, workers=1)) == 12
    extra = sorted((SHARED / "brain-tumor-mri" / "Training" / "glioma").iterdir())[10]
    shutil.copy2(extra, folder / "brain-tumor-mri" / "Training" / "glioma" / extra.name)
    assert len(data.kaggle_manifest(folder, cache, workers=1)) == 13


def test_a_segmentation_cache_follows_its_masks(tmp_path):
    cache = tmp_path / "cache"
    folder = small_data_set(tmp_path / "data", per_class=1)
    first = data.figshare_dataset(folder, cache, 32, workers=1)
    # A corrected mask (here: emptied) is a new data set, not the cached one.
    mask = sorted((folder / "figshare-brain-tumor-seg" / "masks").iterdir())[0]
    Image.fromarray(np.zeros(np.asarray(Image.open(mask)).shape, np.uint8)).save(mask)
    second = data.figshare_dataset(folder, cache, 32, workers=1)
    assert first.masks[0].any() and not second.masks[0].any()
