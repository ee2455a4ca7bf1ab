"""Training data: manifests with duplicate groups and splits, and cached preprocessed arrays.

Decoding and preprocessing thousands of JPEGs takes longer than a training epoch on a small CPU, so it
is done once: ``kaggle_dataset(data_dir, cache_dir, size)`` and ``figshare_dataset(...)`` write
``<cache_dir>/*.npz`` and reuse them while the data and the preprocessing version stay the same. Each
cache file is named by a fingerprint of what it was built from (the files' names, sizes and modification
times; for the pixels, the manifest with every file's SHA-256), so a cache folder shared by several data
folders, or a data folder that gained or lost files, never serves another set's images.

Public helpers for other callers (federated clients, evaluation scripts):

- ``load_classification_arrays(paths, size) -> uint8 (N, size, size)`` preprocesses a list of files.
- ``kaggle_manifest(data_dir, cache_dir)`` -> list of dicts: path, label, sha256, phash, group, split.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import dedup, partition, preprocess, readers

# Bump when preprocess.py changes in a way that alters pixels, so stale caches are rebuilt.
PREPROCESS_VERSION = 1
CLASSIFY_SPLIT = {"val": 0.15, "calib": 0.07, "train": 0.78}


def _hash_file(path: str) -> tuple[str, int]:
    data = Path(path).read_bytes()
    return dedup.content_hash(data), dedup.perceptual_hash(readers.read_grayscale(path))


def _map(function, items, workers: int):
    if workers <= 1:
        return [function(item) for item in items]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(function, items, chunksize=32))


def _fingerprint(lines) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()[:16]


def _listing(data_dir: Path, files) -> list[str]:
    """One line per (path, label): where the file is under data_dir, its size and modification time."""
    lines = []
    for path, label in files:
        stat = Path(path).stat()
        lines.append(f"{Path(path).relative_to(data_dir)}\0{stat.st_size}\0{stat.st_mtime_ns}\0{label}")
    return lines


def _figshare_listing(data_dir: Path, slices) -> list[str]:
    return _listing(data_dir, [(s.image_path, s.label) for s in slices] + [(s.mask_path, "") for s in slices])


def kaggle_manifest(data_dir: str | Path, cache_dir: str | Path, workers: int = 2) -> list[dict]:
    """Every Kaggle training image with its duplicate group and split ("train", "calib", "val" or
    "conflict" for copies filed under two different classes). Cached as JSON, under a name that
    fingerprints the files it was built from."""
    data_dir, cache_dir = Path(data_dir), Path(cache_dir)
    kaggle_root = data_dir / "brain-tumor-mri" / "Training"
    items = readers.list_kaggle_images(kaggle_root)
    # Many Kaggle images are Figshare slices; neighbouring Figshare slice numbers are mostly one
    # patient, so Kaggle images matching slices of the same Figshare block are grouped too.
    figshare = readers.list_figshare_slices(data_dir / "figshare-brain-tumor-seg")
    built_from = _fingerprint(_listing(data_dir, items) + _figshare_listing(data_dir, figshare))
    cache_file = cache_dir / f"kaggle_manifest_{built_from}.json"
    if cache_file.exists():
        return json.loads(cache_file.read_text())
    hashes = _map(_hash_file, [str(p) for p, _ in items], workers)
    copied = _figshare_slices_copied(np.asarray([h for _, h in hashes], dtype=np.uint64),
                                     [label for _, label in items], figshare, workers)
    first_in_block: dict[tuple[int, str], int] = {}
    links = []
    for index, figshare_index in enumerate(copied):
        if figshare_index >= 0:
            match = figshare[figshare_index]
            key = (partition.figshare_block(match.index), match.label)
            links.append((first_in_block.setdefault(key, index), index))
    groups = dedup.group_near_duplicates([c for c, _ in hashes], [p for _, p in hashes], extra_links=links)
    labels = [label for _, label in items]
    splits = partition.stratified_group_split(labels, groups, [c for c, _ in hashes], CLASSIFY_SPLIT)
    manifest = [
        {"path": str(path.relative_to(data_dir)), "label": label, "sha256": sha, "phash": f"{phash:016x}",
         "group": int(group), "split": split}
        for (path, label), (sha, phash), group, split in zip(items, hashes, groups, splits)
    ]
    _write_atomically(cache_file, lambda f: f.write(json.dumps(manifest).encode()))
    return manifest


def kaggle_copies_of_figshare(manifest: list[dict], data_dir: str | Path, figshare_splits: tuple[str, ...],
                              workers: int = 2) -> np.ndarray:
    """Which Kaggle images (in manifest order) are copies of Figshare slices in ``figshare_splits``.

    A network pretrained on Kaggle images and then trained for segmentation must not have seen the
    Figshare slices its segmentation figures are measured on, not even with a class label only. A copy
    is a perceptual-hash match of the same class, as in ``kaggle_manifest``.
    """
    data_dir = Path(data_dir)
    figshare = readers.list_figshare_slices(data_dir / "figshare-brain-tumor-seg")
    splits = partition.figshare_block_split([s.index for s in figshare])
    held = [s for s, split in zip(figshare, splits) if split in figshare_splits]
    if not held:
        return np.zeros(len(manifest), bool)
    kaggle_hashes = np.asarray([int(m["phash"], 16) for m in manifest], dtype=np.uint64)
    return _figshare_slices_copied(kaggle_hashes, [m["label"] for m in manifest], held, workers) >= 0


def _figshare_slices_copied(kaggle_phashes: np.ndarray, kaggle_labels: list[str], slices: list,
                            workers: int) -> np.ndarray:
    """For each Kaggle image, the position in ``slices`` of the Figshare slice it is a copy of, or -1.

    A copy is the nearest slice by perceptual hash, within ``NEAR_DUPLICATE_BITS``, and of the same
    class: only then is it the same slice (neighbouring slices of other classes can hash close).
    """
    slice_phashes = np.asarray([h for _, h in _map(_hash_file, [str(s.image_path) for s in slices], workers)],
                               dtype=np.uint64)
    distances = dedup.hamming_matrix(kaggle_phashes, slice_phashes)
    nearest = distances.argmin(axis=1)
    close = distances[np.arange(len(nearest)), nearest] <= dedup.NEAR_DUPLICATE_BITS
    same_class = np.asarray([slices[j].label == label for j, label in zip(nearest, kaggle_labels)], dtype=bool)
    return np.where(close & same_class, nearest, -1)


def _write_atomically(path: Path, write) -> None:
    """Write a cache file under a temporary name and rename it: two training jobs started together
    build the same cache, and neither may read the other's half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".part", delete=False)
    try:
        with temporary:
            write(temporary)
        os.replace(temporary.name, path)
    except BaseException:
        # A write cut short (a full disk, Ctrl-C) would otherwise leave a part file that nothing removes.
        Path(temporary.name).unlink(missing_ok=True)
        raise


def _preprocess_file(args: tuple[str, int]) -> np.ndarray:
    path, size = args
    return preprocess.preprocess_slice(readers.read_grayscale(path), size).pixels


def load_classification_arrays(paths: list[str | Path], size: int, workers: int = 1) -> np.ndarray:
    """Decode and preprocess image files into a uint8 (N, size, size) array, in the given order."""
    pixels = _map(_preprocess_file, [(str(p), size) for p in paths], workers)
    return np.stack(pixels) if pixels else np.zeros((0, size, size), np.uint8)


@dataclass
class ClassificationData:
    pixels: np.ndarray  # uint8 (N, size, size)
    labels: np.ndarray  # int64 class index into readers.CLASS_NAMES
    splits: np.ndarray  # str: train / calib / val / conflict
    manifest: list[dict]

    def subset(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        chosen = self.splits == split
        return self.pixels[chosen], self.labels[chosen]


def kaggle_dataset(data_dir: str | Path, cache_dir: str | Path, size: int, workers: int = 2) -> ClassificationData:
    data_dir, cache_dir = Path(data_dir), Path(cache_dir)
    manifest = kaggle_manifest(data_dir, cache_dir, workers)
    built_from = _fingerprint(f"{m['path']}\0{m['sha256']}" for m in manifest)
    cache_file = cache_dir / f"kaggle_{size}_v{PREPROCESS_VERSION}_{built_from}.npy"
    if cache_file.exists():
        pixels = np.load(cache_file)
    else:
        pixels = load_classification_arrays([data_dir / m["path"] for m in manifest], size, workers)
        _write_atomically(cache_file, lambda f: np.save(f, pixels))
    labels = np.asarray([readers.CLASS_NAMES.index(m["label"]) for m in manifest], dtype=np.int64)
    return ClassificationData(pixels, labels, np.asarray([m["split"] for m in manifest]), manifest)


def _preprocess_pair(args: tuple[str, str, int]) -> tuple[np.ndarray, np.ndarray]:
    image_path, mask_path, size = args
    prepared = preprocess.preprocess_slice(readers.read_grayscale(image_path), size)
    mask = readers.read_mask(mask_path)
    return prepared.pixels, preprocess.crop_mask(mask, prepared.box, size)


@dataclass
class SegmentationData:
    pixels: np.ndarray  # uint8 (N, size, size)
    masks: np.ndarray  # bool (N, size, size)
    indices: np.ndarray  # Figshare slice numbers
    labels: np.ndarray  # tumour class names
    splits: np.ndarray  # train / calib / val by slice-number block


def figshare_dataset(data_dir: str | Path, cache_dir: str | Path, size: int, workers: int = 2) -> SegmentationData:
    data_dir, cache_dir = Path(data_dir), Path(cache_dir)
    slices = readers.list_figshare_slices(data_dir / "figshare-brain-tumor-seg")
    built_from = _fingerprint(_figshare_listing(data_dir, slices))
    cache_file = cache_dir / f"figshare_{size}_v{PREPROCESS_VERSION}_{built_from}.npz"
    if cache_file.exists():
        cached = np.load(cache_file)
        pixels, masks = cached["pixels"], cached["masks"]
    else:
        pairs = _map(_preprocess_pair, [(str(s.image_path), str(s.mask_path), size) for s in slices], workers)
        pixels = np.stack([p for p, _ in pairs])
        masks = np.stack([m for _, m in pairs])
        _write_atomically(cache_file, lambda f: np.savez(f, pixels=pixels, masks=masks))
    indices = np.asarray([s.index for s in slices])
    return SegmentationData(pixels, masks, indices, np.asarray([s.label for s in slices]),
                            np.asarray(partition.figshare_block_split(indices.tolist())))
