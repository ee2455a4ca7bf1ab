import numpy as np
import pytest

from diagnostics.ml.metrics import cluster_bootstrap_interval


def test_the_interval_brackets_the_mean_and_repeats_with_its_seed():
    values = np.random.default_rng(1).uniform(0.4, 1.0, 200)
    clusters = np.arange(200) // 5

    low, high = cluster_bootstrap_interval(values, clusters)

    assert values.min() < low < values.mean() < high < values.max()
    assert cluster_bootstrap_interval(values, clusters) == (low, high)


def test_slices_of_one_patient_count_once_so_the_interval_is_wider():
    # 20 patients of 10 identical slices each: 20 observations, not 200.
    per_patient = np.random.default_rng(2).uniform(0.3, 1.0, 20)
    values = np.repeat(per_patient, 10)

    low_patients, high_patients = cluster_bootstrap_interval(values, np.repeat(np.arange(20), 10))
    low_slices, high_slices = cluster_bootstrap_interval(values, np.arange(200))

    assert high_patients - low_patients > 2 * (high_slices - low_slices)


def test_one_cluster_leaves_nothing_to_vary():
    assert cluster_bootstrap_interval([0.2, 0.6], ["a", "a"]) == pytest.approx((0.4, 0.4))


@pytest.mark.parametrize("values, clusters, level", [([], [], 0.95), ([0.5, 0.7], [1], 0.95), ([0.5], [1], 1.0)])
def test_bad_input_is_refused(values, clusters, level):
    with pytest.raises(ValueError):
        cluster_bootstrap_interval(values, clusters, level=level)
