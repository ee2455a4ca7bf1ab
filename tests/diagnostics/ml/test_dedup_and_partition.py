import io

import numpy as np
import pytest
from PIL import Image

from diagnostics.ml import dedup, partition

from .helpers import kaggle_file, kaggle_slice, requires_data

pytestmark = requires_data


def _reencoded(path) -> bytes:
    image = Image.open(path).convert("L").resize((200, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=70)
    return buffer.getvalue()


def test_reencoded_copy_is_grouped_with_its_original_and_other_slices_are_not():
    original = kaggle_file("glioma", 5)
    copy_bytes = _reencoded(original)
    copy = np.asarray(Image.open(io.BytesIO(copy_bytes)))
    others = [kaggle_slice("glioma", 6), kaggle_slice("meningioma", 0)]
    content = [dedup.content_hash(original.read_bytes()), dedup.content_hash(copy_bytes),
               "other-a", "other-b"]
    assert content[0] != content[1]
    phashes = [dedup.perceptual_hash(kaggle_slice("glioma", 5)), dedup.perceptual_hash(copy)] + \
              [dedup.perceptual_hash(o) for o in others]
    groups = dedup.group_near_duplicates(content, phashes)
    assert groups[0] == groups[1]
    assert len({groups[0], groups[2], groups[3]}) == 3


def test_byte_identical_files_share_a_group():
    # Perceptual hashes 32+ bits apart: only the content hash can join items 0 and 2.
    groups = dedup.group_near_duplicates(["a", "b", "a"], [0, 2**64 - 1, 0x0F0F0F0F0F0F0F0F])
    assert groups[0] == groups[2] != groups[1]


def test_split_keeps_groups_whole_is_stratified_and_deterministic():
    rng = np.random.default_rng(0)
    groups = [i // 4 for i in range(400)]  # groups of four images of one class
    keys = [f"{rng.integers(1 << 30):x}" for _ in range(400)]
    fractions = {"val": 0.2, "calib": 0.1, "train": 0.7}
    labels = [["glioma", "notumor"][g % 2] for g in groups]
    first = partition.stratified_group_split(labels, groups, keys, fractions)
    assert first == partition.stratified_group_split(labels, groups, keys, fractions)
    for group in set(groups):
        assert len({first[i] for i in range(400) if groups[i] == group}) == 1
    for name in ("glioma", "notumor"):
        share = np.mean([s == "val" for s, label in zip(first, labels) if label == name])
        assert 0.15 <= share <= 0.25


def test_minority_label_in_a_copy_group_is_set_aside():
    split = partition.stratified_group_split(["glioma", "glioma", "meningioma"], [0, 0, 0], ["a", "b", "c"],
                                             {"val": 0.5, "train": 0.5})
    assert split[2] == "conflict" and split[0] == split[1] != "conflict"


def test_figshare_split_is_by_contiguous_blocks():
    indices = list(range(1, 3001))
    split = partition.figshare_block_split(indices)
    size = partition.FIGSHARE_BLOCK_SIZE
    for start in range(0, 3000, size):
        assert len(set(split[start:start + size])) == 1
    assert 0.1 < split.count("val") / len(split) < 0.2
    assert 0.05 < split.count("calib") / len(split) < 0.1


def test_figshare_calibration_blocks_never_touch_a_validation_block():
    indices = list(range(1, 3001))
    split = partition.figshare_block_split(indices)
    size = partition.FIGSHARE_BLOCK_SIZE
    blocks = [split[start] for start in range(0, 3000, size)]
    for before, after in zip(blocks, blocks[1:]):
        assert {before, after} != {"val", "calib"}


def test_hospital_partitions_cover_the_data_and_are_seeded():
    labels = np.repeat(np.arange(4), 50)
    iid = partition.partition_iid(len(labels), 3, seed=1)
    assert sorted(np.concatenate(iid).tolist()) == list(range(200))
    skewed = partition.partition_dirichlet(labels, 4, alpha=0.3, seed=5)
    again = partition.partition_dirichlet(labels, 4, alpha=0.3, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(skewed, again))
    assert sorted(np.concatenate(skewed).tolist()) == list(range(200))
    assert min(len(s) for s in skewed) >= 10
    # Label skew: some hospital's class mix is far from uniform.
    mixes = [np.bincount(labels[s], minlength=4) / len(s) for s in skewed]
    assert max(m.max() for m in mixes) > 0.4


def test_hospital_shares_are_capped_disjoint_seeded_and_keep_the_skew():
    labels = np.repeat(np.array(["glioma", "meningioma", "notumor", "pituitary"]), 100).tolist()
    iid = partition.hospital_shares(labels, 3, partition="iid", per_hospital=40)
    assert [len(s) for s in iid] == [40, 40, 40]
    assert len(set(np.concatenate(iid).tolist())) == 120  # no case given to two hospitals
    again = partition.hospital_shares(labels, 3, partition="iid", per_hospital=40)
    assert all(np.array_equal(a, b) for a, b in zip(iid, again))
    other_seed = partition.hospital_shares(labels, 3, partition="iid", per_hospital=40, seed=1)
    assert not all(np.array_equal(a, b) for a, b in zip(iid, other_seed))

    skewed = partition.hospital_shares(labels, 3, partition="label-skew", per_hospital=1000, alpha=0.3)
    shards = partition.partition_dirichlet(labels, 3, alpha=0.3)
    # Under the cap a share is its whole shard, so the subset keeps exactly the shard's class mix.
    assert all(np.array_equal(share, shard) for share, shard in zip(skewed, shards))


def test_an_unknown_partition_is_refused():
    with pytest.raises(ValueError, match="unknown partition 'by-age'"):
        partition.hospital_shares(["glioma"] * 30, 3, partition="by-age", per_hospital=10)


def test_kaggle_copies_of_held_out_figshare_slices_are_found_by_hash_and_class():
    from diagnostics.ml import data, readers

    from .helpers import DATA_DIR, FIGSHARE

    slices = readers.list_figshare_slices(FIGSHARE)
    splits = partition.figshare_block_split([s.index for s in slices])
    held_out = next(s for s, split in zip(slices, splits) if split == "val")
    trained_on = next(s for s, split in zip(slices, splits) if split == "train")

    def entry(figshare_slice, label):
        phash = dedup.perceptual_hash(readers.read_grayscale(figshare_slice.image_path))
        return {"phash": f"{phash:016x}", "label": label}

    other_class = next(name for name in ("glioma", "meningioma", "pituitary") if name != held_out.label)
    manifest = [entry(held_out, held_out.label), entry(held_out, other_class), entry(trained_on, trained_on.label)]
    copies = data.kaggle_copies_of_figshare(manifest, DATA_DIR, ("calib", "val"))
    assert copies.tolist() == [True, False, False]
    assert data.kaggle_copies_of_figshare(manifest, DATA_DIR, ("train",)).tolist() == [False, False, True]
