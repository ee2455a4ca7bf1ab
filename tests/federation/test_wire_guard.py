"""Only the model's weights and aggregate metrics may leave a node: the ServerApp refuses anything else."""

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from federation.server_app import inspect_reply

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
