"""A node's train message: it measures the model it received, trains on with the optimizer it kept, and
sends back only weights and aggregate metrics."""

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict

from federation import client_app, learning
from federation.server_app import inspect_reply
from tests.federation.conftest import seed_hospital

SIZE, WIDTH = 32, 4


@pytest.fixture(autouse=True)
def task_identity(monkeypatch):
    """What flwr's run_clientapp sets before it calls the app: messages are made for this task."""
    from flwr.supercore.task_identity import TaskIdentity

    for name, value in {"_task_id": 11, "_run_id": 1, "_node_id": 7}.items():
        monkeypatch.setattr(TaskIdentity, name, value)


def train_message(weights: np.ndarray, server_round: int) -> Message:
    config = ConfigRecord({"model-kind": "classifier", "image-size": SIZE, "model-width": WIDTH, "local-epochs": 1,
                           "batch-size": 4, "server-round": server_round, "num-rounds": 2,
                           "learning-rate": 0.003, "logit-adjustment": True})
    return Message(RecordDict({"arrays": ArrayRecord([weights]), "config": config}), dst_node_id=7,
                   message_type="train")


@pytest.mark.django_db
def test_the_optimizer_state_carries_over_rounds_and_never_travels():
    seed_hospital("fl-a", per_class=2, offset=0)
    context = Context(run_id=1, node_id=7, node_config={"hospital": "fl-a"}, state=RecordDict(), run_config={})
    weights = learning.pack_weights(learning.build_model("classifier", SIZE, WIDTH))

    first = client_app.train(train_message(weights, 1), context)
    sent_back = first.content.metric_records["metrics"]
    assert sent_back["num-examples"] == 8 and 0.0 <= sent_back["eval-accuracy"] <= 1.0 and sent_back["eval-loss"] > 0
    kept = client_app._kept_optimizer_state(context)
    assert kept is not None and int(kept[0]) == 2  # Keras' step counter: 8 cases at batch 4
    assert inspect_reply(first.content, "train", [weights.shape]) is None
    assert client_app.OPTIMIZER_STATE not in first.content.array_records

    second = client_app.train(train_message(first.content["arrays"].to_numpy_ndarrays()[0], 2), context)
    resumed = client_app._kept_optimizer_state(context)
    assert int(resumed[0]) == 4  # continued from step 2, not restarted
    moments = [state for state in resumed if state.ndim]
    assert any(np.abs(state).sum() > 0 for state in moments)
    assert inspect_reply(second.content, "train", [weights.shape]) is None



def test_nodes_evaluate_separately_only_the_final_model():
    from federation.server_app import evaluate_on_nodes_after_the_last_round

    class Strategy:
        def configure_evaluate(self, server_round, arrays, config, grid):
            return [f"evaluate round {server_round}"]

    strategy = evaluate_on_nodes_after_the_last_round(Strategy(), num_rounds=3)
    assert [strategy.configure_evaluate(r, None, None, None) for r in (1, 2, 3)] == [[], [], ["evaluate round 3"]]


def test_a_run_s_seed_fixes_its_initial_weights():
    first = learning.pack_weights(learning.build_model("classifier", SIZE, WIDTH, seed=0))
    again = learning.pack_weights(learning.build_model("classifier", SIZE, WIDTH, seed=0))
    other = learning.pack_weights(learning.build_model("classifier", SIZE, WIDTH, seed=1))
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_nodes_shuffle_differently_each_round_and_each_run_seed():
    seeds = {learning.round_seed(run_seed, server_round) for run_seed in range(3) for server_round in range(1, 201)}
    assert len(seeds) == 3 * 200
    assert learning.round_seed(0, 7) == 7  # a run with seed 0 shuffles as runs did before the option
