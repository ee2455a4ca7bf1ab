"""Only the model's weights and aggregate metrics may leave a node: the ServerApp refuses anything else."""

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg

from federation.server_app import inspect_reply, keep_common_metrics

SHAPES = [(3, 3, 1, 4), (4,)]


def reply(**records):
    return RecordDict(records)


def weights(shapes=SHAPES):
    return ArrayRecord([np.zeros(s, np.float32) for s in shapes])


def test_weights_and_listed_metrics_pass():
    ok = reply(arrays=weights(), metrics=MetricRecord({"num-examples": 10, "train-loss": 0.5, "train-s": 1.0}))
    assert inspect_reply(ok, "train", SHAPES) is None
    # The received model's figures on the node's cases, measured before it trained.
    with_evaluation = reply(arrays=weights(), metrics=MetricRecord({"num-examples": 10, "train-loss": 0.5,
                                                                    "eval-loss": 0.7, "eval-accuracy": 0.6}))
    assert inspect_reply(with_evaluation, "train", SHAPES) is None
    evaluated = reply(metrics=MetricRecord({"num-examples": 10, "eval-accuracy": 0.9}))
    assert inspect_reply(evaluated, "evaluate", None) is None


@pytest.mark.parametrize("records, problem", [
    ({"arrays": weights(), "images": ArrayRecord([np.zeros((2, 32, 32), np.uint8)]),
      "metrics": MetricRecord({"num-examples": 2})}, "array records"),
    ({"arrays": weights(), "metrics": MetricRecord({"num-examples": 2, "loss-of-case-17": 0.1})}, "not on the list"),
    ({"arrays": weights(), "metrics": MetricRecord({"num-examples": 2, "train-loss": [0.1, 0.9]})}, "list"),
    ({"arrays": weights([(5, 5)]), "metrics": MetricRecord({"num-examples": 2})}, "shapes"),
    ({"arrays": weights(), "metrics": MetricRecord({"num-examples": 2}),
      "labels": ConfigRecord({"case-1": "glioma"})}, "config records"),
])
def test_anything_else_is_refused(records, problem):
    assert problem in inspect_reply(reply(**records), "train", SHAPES)


def test_an_evaluate_reply_may_not_carry_weights():
    sneaky = reply(arrays=weights(), metrics=MetricRecord({"num-examples": 3}))
    assert "array records" in inspect_reply(sneaky, "evaluate", None)


# --- what is averaged into every hospital's next model ---------------------------------------------------


def poisoned(value):
    arrays = [np.zeros(s, np.float32) for s in SHAPES]
    arrays[0][0, 0, 0, 0] = value
    return ArrayRecord(arrays)


@pytest.mark.parametrize("arrays, problem", [
    (poisoned(np.nan), "not finite"),
    (poisoned(np.inf), "not finite"),
    (poisoned(-np.inf), "not finite"),
    # The model's shapes in another type: averaged, it would turn the global vector into float64.
    (ArrayRecord([np.zeros(s, np.float64) for s in SHAPES]), "float32"),
    (ArrayRecord([np.zeros(s, np.int32) for s in SHAPES]), "float32"),
])
def test_weights_that_are_not_finite_float32_are_refused(arrays, problem):
    content = reply(arrays=arrays, metrics=MetricRecord({"num-examples": 10, "train-loss": 0.5}))
    assert problem in inspect_reply(content, "train", SHAPES)


@pytest.mark.parametrize("metrics", [
    {"train-loss": 0.5},  # no case count: Flower's aggregation would end the run
    {"num-examples": 0},  # zero for every node divides by zero
    {"num-examples": -40},  # turns the weighted average around
    {"num-examples": 2.5},
    {"num-examples": float("nan")},
    {"num-examples": 10, "train-loss": float("inf")},
    {"num-examples": 10, "eval-accuracy": float("nan")},
])
def test_a_case_count_that_cannot_weigh_a_reply_or_a_metric_that_is_not_a_number_is_refused(metrics):
    assert inspect_reply(reply(arrays=weights(), metrics=MetricRecord(metrics)), "train", SHAPES) is not None
    assert inspect_reply(reply(metrics=MetricRecord(metrics)), "evaluate", None) is not None


def answered(content: RecordDict, node_id: int) -> Message:
    return Message(content, dst_node_id=node_id, message_type="train")


def test_replies_reporting_different_metrics_are_still_aggregated(monkeypatch):
    from flwr.supercore.task_identity import TaskIdentity

    # A message is made inside a Flower task: this process plays the ServerApp's.
    for name, value in {"_task_id": 11, "_run_id": 1, "_node_id": 1}.items():
        monkeypatch.setattr(TaskIdentity, name, value)
    # One node reports a figure the other does not: Flower's FedAvg refuses such a set of replies and the
    # run would end, though each reply alone passed the guard.
    full = reply(arrays=weights(), metrics=MetricRecord({"num-examples": 10, "train-loss": 0.5,
                                                         "train-accuracy": 0.8}))
    fewer = reply(arrays=ArrayRecord([np.ones(s, np.float32) for s in SHAPES]),
                  metrics=MetricRecord({"num-examples": 30, "train-loss": 0.7}))
    replies = [answered(full, 1), answered(fewer, 2)]
    assert all(inspect_reply(r.content, "train", SHAPES) is None for r in replies)
    keep_common_metrics(replies)
    arrays, metrics = FedAvg().aggregate_train(1, replies)
    np.testing.assert_allclose(arrays.to_numpy_ndarrays()[1], np.full(SHAPES[1], 0.75))
    assert dict(metrics) == {"train-loss": pytest.approx(0.65)}  # weighted by 10 and 30 cases
