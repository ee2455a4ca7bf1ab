"""Splits of the data: train/calibration/validation for centralised training, and hospitals for
federated simulation.

``stratified_group_split`` keeps every duplicate group on one side and keeps class proportions; it is
deterministic (it orders groups by a hash of their members' content, not by file order or a random
generator), so the same data always gives the same split. ``figshare_block_split`` splits the
segmentation set by contiguous slice-number blocks, because neighbouring numbers are mostly the same
patient.

``partition_iid`` and ``partition_dirichlet`` divide a training set among N hospitals for the
federated-learning simulation: IID shards, or label-skewed shards whose class mix per hospital is drawn
from a Dirichlet(alpha) distribution (small alpha = strongly skewed), seeded.
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict

import numpy as np

FIGSHARE_BLOCK_SIZE = 40  # slice numbers per block; the Figshare set averages ~13 slices a patient


def stratified_group_split(labels: list[str], groups: list[int], keys: list[str],
                           fractions: dict[str, float]) -> list[str]:
    """Assign each item a split name so that groups stay whole and classes keep their proportions.

    ``keys`` (e.g. content hashes) order the groups deterministically. ``fractions`` maps split names
    to shares, e.g. {"val": 0.15, "calib": 0.07, "train": 0.78}; the last name takes the rest.
    In a group whose members carry different labels, the minority members are "conflict".
    """
    members: dict[int, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    by_class: dict[str, list[tuple[str, int]]] = defaultdict(list)
    assignment = [""] * len(labels)
    for group, indices in members.items():
        label_counts = Counter(labels[i] for i in indices)
        majority = max(sorted(label_counts), key=label_counts.__getitem__)
        # Copies filed under two classes: at least one label is wrong and nobody can tell which, so the
        # minority members are left out ("conflict"); the group still moves as one.
        for i in indices:
            if labels[i] != majority:
                assignment[i] = "conflict"
        order_key = hashlib.sha256("".join(sorted(keys[i] for i in indices)).encode()).hexdigest()
        by_class[majority].append((order_key, group))
    names = list(fractions)
    for class_name, class_groups in by_class.items():
        class_groups.sort()
        total = sum(len(members[g]) for _, g in class_groups)
        targets = {name: fractions[name] * total for name in names[:-1]}
        filled = Counter()
        for _, group in class_groups:
            size = len(members[group])
            # Fill the small splits first, each up to its share; everything else is training data.
            name = next((n for n in names[:-1] if filled[n] + size / 2 <= targets[n]), names[-1])
            filled[name] += size
            for i in members[group]:
                assignment[i] = assignment[i] or name
    return assignment


def figshare_block(index: int) -> int:
    return (index - 1) // FIGSHARE_BLOCK_SIZE


def figshare_block_split(indices: list[int], val_every: int = 7, val_offset: int = 3) -> list[str]:
    """"val" for slices in every ``val_every``-th block of slice numbers, "calib" for every other block
    half-way between two validation blocks, "train" for the rest.

    Blocks are spread over the whole numbering, so all three tumour classes (which occupy different
    number ranges) appear in validation. The calibration blocks choose the segmenter's checkpoint, so
    the validation blocks are touched only for the reported figures.
    """
    calib_offset = (val_offset + val_every // 2 + 1) % val_every

    def split(block: int) -> str:
        if block % val_every == val_offset:
            return "val"
        if block % (2 * val_every) == calib_offset:
            return "calib"
        return "train"

    return [split(figshare_block(i)) for i in indices]


def partition_iid(num_items: int, num_hospitals: int, seed: int = 0) -> list[np.ndarray]:
    """Shuffle item indices and cut them into ``num_hospitals`` near-equal shards."""
    order = np.random.default_rng(seed).permutation(num_items)
    return [np.sort(part) for part in np.array_split(order, num_hospitals)]


def partition_dirichlet(labels, num_hospitals: int, alpha: float = 0.5, seed: int = 0,
                        min_items: int = 10) -> list[np.ndarray]:
    """Label-skewed shards: each class is divided among hospitals in Dirichlet(alpha) proportions.

    Redraws (with the same seeded generator) until every hospital has at least ``min_items`` items, so
    no simulated hospital is empty. Returns sorted index arrays.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        shards: list[list[int]] = [[] for _ in range(num_hospitals)]
        for class_value in np.unique(labels):
            indices = rng.permutation(np.flatnonzero(labels == class_value))
            proportions = rng.dirichlet(np.full(num_hospitals, alpha))
            cuts = (np.cumsum(proportions)[:-1] * len(indices)).astype(int)
            for shard, part in zip(shards, np.split(indices, cuts)):
                shard.extend(part.tolist())
        if min(len(s) for s in shards) >= min_items:
            return [np.sort(np.asarray(s, dtype=np.int64)) for s in shards]
    raise ValueError(f"cannot give {num_hospitals} hospitals {min_items} items each at alpha={alpha}")


def hospital_shares(labels, num_hospitals: int, *, partition: str, per_hospital: int, alpha: float = 0.5,
                    seed: int = 0) -> list[np.ndarray]:
    """Each hospital's share of a training set: ``partition_iid`` or ``partition_dirichlet`` shards, each
    cut to at most ``per_hospital`` items by a seeded random subset, which keeps a shard's class mix
    (the skew). Sorted index arrays; the same arguments always give the same shares.
    """
    if partition == "iid":
        shards = partition_iid(len(labels), num_hospitals, seed=seed)
    elif partition == "label-skew":
        shards = partition_dirichlet(labels, num_hospitals, alpha=alpha, seed=seed)
    else:
        raise ValueError(f"unknown partition {partition!r}: use 'iid' or 'label-skew'")
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(shard, size=min(per_hospital, len(shard)), replace=False)) for shard in shards]
