"""What a node's ClientApp reads: its own hospital's reviewed cases, named by its node config only."""

import hashlib

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from flwr.app import ConfigRecord, Context, RecordDict

from diagnostics.ml.preprocess import preprocess_slice
from diagnostics.ml.readers import read_grayscale
from federation.client_app import _local_data, participation_problem
from federation.conf import min_node_cases
from tests.factories import add_reviewed_case, make_hospital
from tests.federation.conftest import CLASSES, kaggle_files, seed_hospital

CONFIG = ConfigRecord({"model-kind": "classifier", "image-size": 32, "model-width": 4, "local-epochs": 1,
                       "batch-size": 8, "hospital": "fl-b"})


def node_context(slug):
    return Context(run_id=1, node_id=7, node_config={"hospital": slug}, state=RecordDict(), run_config={})


def digests(images):
    return {hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest() for image in images}


def expected(per_class, offset):
    return digests(preprocess_slice(read_grayscale(path), 32).pixels
                   for label in CLASSES for path in kaggle_files(label, per_class, offset))


@pytest.mark.django_db
def test_a_node_reads_only_its_own_hospitals_cases_whatever_the_message_says():
    seed_hospital("fl-a", per_class=2, offset=0)
    seed_hospital("fl-b", per_class=1, offset=100)
    # The message's config names B; the node serves A: A's cases, and only A's, are read.
    x, y = _local_data(node_context("fl-a"), CONFIG)
    assert len(x) == 8 and sorted(np.bincount(y)) == [2, 2, 2, 2]
    assert digests(x) == expected(2, 0)
    assert not digests(x) & expected(1, 100)
    x_b, _ = _local_data(node_context("fl-b"), CONFIG)
    assert digests(x_b) == expected(1, 100)


@pytest.mark.django_db
def test_a_hospital_that_opted_out_sends_nothing():
    hospital = seed_hospital("fl-a", per_class=1, offset=0)
    hospital.federation_opt_in = False
    hospital.save(update_fields=["federation_opt_in"])
    with pytest.raises(PermissionError):
        _local_data(node_context("fl-a"), CONFIG)


@pytest.mark.django_db
def test_a_node_with_fewer_cases_than_its_minimum_sends_nothing(settings):
    """The minimum is the node's own configuration: no message can lower it, and neither a weight update nor
    evaluation figures from fewer cases leave the node."""
    seed_hospital("fl-a", per_class=1, offset=0)  # 4 cases
    settings.FEDERATION_MIN_NODE_CASES = 5
    with pytest.raises(PermissionError, match=r"this hospital has 4 reviewed cases for this model; its node takes "
                                              r"part with at least 5 \(FEDERATION_MIN_NODE_CASES\)"):
        _local_data(node_context("fl-a"), CONFIG)
    settings.FEDERATION_MIN_NODE_CASES = 4
    x, _ = _local_data(node_context("fl-a"), CONFIG)
    assert len(x) == 4


def test_a_minimum_below_one_is_a_configuration_error(settings, monkeypatch):
    del settings.FEDERATION_MIN_NODE_CASES
    monkeypatch.setenv("FEDERATION_MIN_NODE_CASES", "0")
    with pytest.raises(ImproperlyConfigured, match=r"^FEDERATION_MIN_NODE_CASES must be at least 1, not 0$"):
        min_node_cases()
    monkeypatch.setenv("FEDERATION_MIN_NODE_CASES", "")  # empty counts as unset: the default
    assert min_node_cases() == 20


@pytest.mark.django_db
def test_a_segmenter_node_counts_its_outlined_tumours_not_its_empty_outlines(settings):
    """"No tumour" cases train the segmenter too, with empty outlines, but one tumour among them would send
    an update that says much about that one patient: the node counts tumours, as the coordinator does."""
    hospital = make_hospital("fl-a", "Fl A")
    hospital.federation_opt_in = True
    hospital.save(update_fields=["federation_opt_in"])
    outline = np.zeros((64, 64), bool)
    outline[20:30, 20:30] = True
    add_reviewed_case(hospital, "glioma", mask=outline)
    add_reviewed_case(hospital, "notumor"), add_reviewed_case(hospital, "notumor")
    settings.FEDERATION_MIN_NODE_CASES = 2
    segmenter = ConfigRecord({**CONFIG, "model-kind": "segmenter"})
    with pytest.raises(PermissionError, match=r"this hospital has 1 outlined tumour for this model; its node takes "
                                              r"part with at least 2"):
        _local_data(node_context("fl-a"), segmenter)
    add_reviewed_case(hospital, "pituitary", mask=outline)
    x, masks = _local_data(node_context("fl-a"), segmenter)
    assert len(x) == 4 and sum(bool(mask.any()) for mask in masks) == 2


@pytest.mark.django_db
def test_a_node_says_before_the_first_round_that_it_will_refuse_a_model(settings):
    """Asked who it is, a node answers from counts alone what _local_data would refuse every round: the
    coordinator leaves it out at once instead of seeing it drop out of each round."""
    hospital = seed_hospital("fl-a", per_class=1, offset=0)  # 4 reviewed cases, none outlined
    settings.FEDERATION_MIN_NODE_CASES = 4
    assert participation_problem(node_context("fl-a"), "classifier") is None
    assert participation_problem(node_context("fl-a"), "segmenter") == (
        "this hospital has 0 outlined tumours for this model; its node takes part with at least 4 "
        "(FEDERATION_MIN_NODE_CASES)")
    settings.FEDERATION_MIN_NODE_CASES = 5
    assert participation_problem(node_context("fl-a"), "classifier") == (
        "this hospital has 4 reviewed cases for this model; its node takes part with at least 5 "
        "(FEDERATION_MIN_NODE_CASES)")
    settings.FEDERATION_MIN_NODE_CASES = 1
    hospital.federation_opt_in = False
    hospital.save(update_fields=["federation_opt_in"])
    assert participation_problem(node_context("fl-a"), "classifier") == (
        "hospital fl-a is not opted in to federated learning")
    assert participation_problem(node_context("fl-gone"), "classifier") == "no hospital fl-gone on this platform"
