"""The in-process FedAvg simulation: it runs a node's round (`learning.train_round`) for each hospital,
aggregates as the deployment does, and learns; `federation_simulate` refuses bad options."""

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from diagnostics.ml.data import load_classification_arrays
from federation import learning
from federation.simulation import simulate_fedavg
from tests.federation.conftest import CLASSES, kaggle_files

SIZE, WIDTH = 32, 4


def real_share(per_class: int, offset: int):
    paths, labels = [], []
    for index, label in enumerate(CLASSES):
        found = kaggle_files(label, per_class, offset)
        paths += found
        labels += [index] * len(found)
    return load_classification_arrays(paths, SIZE), np.asarray(labels, dtype=np.int64)


def loss_on(model, shares) -> float:
    x = np.concatenate([s[0] for s in shares])
    y = np.concatenate([s[1] for s in shares])
    return learning.evaluate(model, learning.MODEL_CLASSIFIER, x, y)["loss"]


def test_fedavg_over_two_hospitals_lowers_the_loss_on_their_cases_and_reports_every_round():
    shares = [real_share(3, 0), real_share(3, 3)]
    initial = learning.build_model(learning.MODEL_CLASSIFIER, SIZE, WIDTH, seed=4)
    seen_rounds = []
    # Enough steps that the model's batch-norm statistics, which evaluation uses, follow its training:
    # at 3 rounds of 2 epochs the loss moved by about 0.01 and the comparison came down to chance.
    model = simulate_fedavg(shares, image_size=SIZE, width=WIDTH, rounds=4, local_epochs=3, batch_size=4,
                            peak_lr=0.01, server_step=1.5, seed=4,
                            after_round=lambda number, _model: seen_rounds.append(number))
    assert seen_rounds == [1, 2, 3, 4]
    assert loss_on(model, shares) < loss_on(initial, shares)


def test_a_hospital_without_cases_is_refused():
    empty = (np.zeros((0, SIZE, SIZE), np.uint8), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="at least one case"):
        simulate_fedavg([real_share(1, 0), empty], image_size=SIZE, width=WIDTH, rounds=1, local_epochs=1,
                        batch_size=4, peak_lr=0.01)


@pytest.mark.parametrize("option, value, message", [
    ("partitions", "iid,by-age", "--partitions: choose from iid, label-skew"),
    ("splits", "test", "--splits: choose from calib, val"),
    ("seeds", "0,one", "--seeds takes comma-separated numbers"),
    ("rounds", 0, "must be positive"),
    ("proximal_mu", -0.1, "--proximal-mu cannot be negative"),
    ("alpha", 0.0, r"--alpha \(the Dirichlet concentration\) must be above 0"),
    ("image_size", 8, "--image-size must be at least 16"),
    ("learning_rate", 0.0, "--learning-rate above 0"),
])
def test_the_command_refuses_bad_options_before_loading_anything(option, value, message):
    with pytest.raises(CommandError, match=message):
        call_command("federation_simulate", **{option: value})
