"""FedAvg's server step: the global model moves a multiple of the nodes' averaged update, on the
trainable weights only; BatchNorm's statistics take the plain average."""

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg

from federation import learning
from federation.models import FederatedRun
from federation.server_app import build_strategy, with_server_step


class TwoNodes:
    """All that FedAvg's node sampling asks of a grid."""

    def get_node_ids(self):
        return [1, 2]


@pytest.fixture(autouse=True)
def task_identity(monkeypatch):
    from flwr.supercore.task_identity import TaskIdentity

    for name, value in {"_task_id": 11, "_run_id": 1, "_node_id": 1}.items():
        monkeypatch.setattr(TaskIdentity, name, value)


def train_reply(weights, examples: int) -> Message:
    content = RecordDict({"arrays": ArrayRecord([np.asarray(weights, np.float32)]),
                          "metrics": MetricRecord({"num-examples": examples})})
    return Message(content, dst_node_id=0, message_type="train")


def one_round(strategy, before, replies):
    strategy.configure_train(1, ArrayRecord([np.asarray(before, np.float32)]), ConfigRecord({}), TwoNodes())
    arrays, _ = strategy.aggregate_train(1, replies)
    return arrays.to_numpy_ndarrays()[0]


def test_the_averaged_update_is_scaled_on_trainable_weights_and_statistics_are_averaged():
    before = np.array([1.0, 1.0, 4.0, 4.0])
    trainable = np.array([True, True, False, False])
    replies = [train_reply([2.0, 0.0, 2.0, 3.0], 300), train_reply([4.0, 0.0, 6.0, 3.0], 100)]

    stepped = one_round(with_server_step(FedAvg(min_available_nodes=2), 2.0, trainable), before, replies)

    # Weighted by cases: the average is [2.5, 0, 3, 3]; the update [1.5, -1] is doubled where trainable.
    assert stepped == pytest.approx([4.0, -1.0, 3.0, 3.0])


def test_a_step_of_one_is_flowers_plain_average():
    before = np.zeros(3)
    replies = [train_reply([1.0, 2.0, 3.0], 1), train_reply([3.0, 2.0, 1.0], 1)]
    plain = FedAvg(min_available_nodes=2)

    assert with_server_step(plain, 1.0, np.ones(3, bool)) is plain
    assert one_round(plain, before, replies) == pytest.approx([2.0, 2.0, 2.0])


@pytest.mark.django_db
def test_every_strategy_but_fedadam_takes_the_run_s_server_step():
    trainable = np.ones(4, bool)
    replies = [train_reply([1.0, 1.0, 1.0, 1.0], 1), train_reply([3.0, 3.0, 3.0, 3.0], 1)]
    for strategy in ("fedavg", "fedprox"):
        stepped = build_strategy(FederatedRun(strategy=strategy, server_step=2.0, min_nodes=2), trainable=trainable)
        assert one_round(stepped, np.zeros(4), replies) == pytest.approx([4.0] * 4)
    fedadam = build_strategy(FederatedRun(strategy="fedadam", server_step=2.0, min_nodes=2), trainable=trainable)
    # FedAdam's own server optimizer moves it: the run's step is not applied on top.
    assert fedadam.aggregate_train.__name__ == "aggregate_and_average_statistics"


def test_the_trainable_mask_lines_up_with_the_weights_vector():
    model = learning.build_model("classifier", 32, 4, seed=0)
    mask = learning.trainable_mask(model)
    flat = learning.pack_weights(model)

    assert mask.shape == flat.shape and mask.dtype == bool
    statistics = [v for v in model.weights if not v.trainable]
    assert statistics and (~mask).sum() == sum(int(np.prod(v.shape)) for v in statistics)
    # BatchNorm's moving variances start at one: every frozen entry that is a variance reads 1.
    assert np.isin(flat[~mask], [0.0, 1.0]).all() and not np.isin(flat[mask], [0.0, 1.0]).all()


@pytest.mark.django_db
def test_with_central_dp_the_step_scales_the_noisy_average_so_the_guarantee_holds():
    """Post-processing keeps DP: the noise is added to the clipped average first, then the step applies.
    With no update at all (which Flower's clipping divided by zero on), what moves the model is the noise,
    scaled by the step."""
    size, step, noise, clip = 20_000, 2.0, 0.5, 1.0
    before = np.zeros(size)
    replies = [train_reply(before, 1), train_reply(before, 1)]
    run = FederatedRun(strategy="fedavg", server_step=step, min_nodes=2, dp_noise_multiplier=noise,
                       dp_clipping_norm=clip)

    moved = one_round(build_strategy(run, trainable=np.ones(size, bool)), before, replies)

    dp_stdev = noise * clip / 2  # the Gaussian mechanism for the average of two clipped updates
    assert np.std(moved) == pytest.approx(step * dp_stdev, rel=0.05)


def _dp_run(noise=0.5, clip=1.0, strategy="fedavg"):
    return FederatedRun(strategy=strategy, server_step=1.0, min_nodes=2, dp_noise_multiplier=noise,
                        dp_clipping_norm=clip)


class FourNodes:
    def get_node_ids(self):
        return [1, 2, 3, 4]


def test_dp_noise_is_sized_for_the_replies_averaged_not_the_hospitals_asked():
    """Four hospitals asked, two replied: the noise is that of an average of two (Flower's wrapper sized it
    for the four asked, half what two replies need)."""
    size = 20_000
    before = np.zeros(size)
    strategy = build_strategy(_dp_run(), trainable=np.ones(size, bool))
    asked = strategy.configure_train(1, ArrayRecord([before.astype(np.float32)]), ConfigRecord({}), FourNodes())
    assert len(list(asked)) == 4
    arrays, _ = strategy.aggregate_train(1, [train_reply(before, 1), train_reply(before, 1)])
    assert np.std(arrays.to_numpy_ndarrays()[0]) == pytest.approx(0.5 * 1.0 / 2, rel=0.05)


def test_under_dp_each_update_is_clipped_and_counts_the_same_whatever_its_cases():
    """Weighted by cases, the 980-case hospital would move the average by 0.98 of the clipping norm, not
    the 1/2 the noise is sized for."""
    size = 4
    before = np.zeros(size)
    big = train_reply([30.0, 40.0, 0.0, 0.0], 980)  # norm 50: clipped to 1, i.e. [0.6, 0.8, 0, 0]
    small = train_reply([0.0, 0.0, 0.0, 0.0], 20)
    quiet = _dp_run(noise=1e-9)
    moved = one_round(build_strategy(quiet, trainable=np.ones(size, bool)), before, [big, small])
    assert moved == pytest.approx([0.3, 0.4, 0.0, 0.0], abs=1e-6)


def test_under_dp_batchnorm_statistics_get_no_noise_and_come_from_the_coordinators_images():
    before = np.array([0.0, 0.0, 1.0, 1.0])
    trainable = np.array([True, True, False, False])
    replies = [train_reply([0.1, 0.1, 0.02, 0.02], 5), train_reply([0.1, 0.1, 0.03, 0.03], 5)]
    kept = one_round(build_strategy(_dp_run(noise=50.0), trainable=trainable), before, replies)
    # Huge noise on the weights, none on the statistics: as sent, not the nodes' (functions of their scans).
    assert kept[2:] == pytest.approx([1.0, 1.0]) and np.abs(kept[:2]).max() > 1.0

    def own_statistics(weights):
        weights = weights.copy()
        weights[~trainable] = 0.5
        return weights

    set_here = one_round(build_strategy(_dp_run(noise=50.0), trainable=trainable, statistics=own_statistics),
                         before, replies)
    assert set_here[2:] == pytest.approx([0.5, 0.5])


def test_dp_is_refused_with_fedadam():
    with pytest.raises(ValueError, match="FedAvg or FedProx"):
        build_strategy(_dp_run(strategy="fedadam"), trainable=np.ones(4, bool))


def test_fedadam_leaves_batchnorm_statistics_at_the_nodes_average():
    """Its momentum carried variances below zero over the rounds, and the model to NaN."""
    before = np.array([0.0, 1.0])
    trainable = np.array([True, False])
    strategy = build_strategy(FederatedRun(strategy="fedadam", server_learning_rate=0.5, min_nodes=2),
                              trainable=trainable)
    weights = before
    for _ in range(30):  # the nodes keep reporting a variance of 0.05
        weights = one_round(strategy, weights, [train_reply([1.0, 0.05], 3), train_reply([1.0, 0.05], 1)])
    assert weights[1] == pytest.approx(0.05)
