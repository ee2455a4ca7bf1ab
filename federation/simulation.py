"""Federated averaging in one process: the nodes' rounds one after another, for quick experiments.

A round here is what a round of the deployment computes: each node's local training goes through
`learning.train_round` (the function a node's train message calls) with the optimizer state the node
kept from its previous round, the global model is the nodes' average weighted by their case counts, and
the server step is `learning.apply_server_step` (what `server_app.with_server_step` applies). What it
leaves out is everything but the arithmetic: no SuperLink or SuperNodes, no processes, no encryption,
no wire, no drop-outs. It takes minutes where the deployed `federation_experiment` takes most of an
hour, so choices can be tried here first; docs/federation.md compares the two.
"""

from collections.abc import Callable

import numpy as np

from federation import learning


def simulate_fedavg(shares: list[tuple[np.ndarray, np.ndarray]], *, image_size: int, width: int, rounds: int,
                    local_epochs: int, batch_size: int, peak_lr: float, server_step: float = 1.0,
                    logit_adjustment: bool = True, seed: int = 0, proximal_mu: float = 0.0,
                    after_round: Callable[[int, object], None] | None = None):
    """FedAvg of a classifier over the hospitals' `shares` ((x, y) each); returns the global model.

    `after_round(round, model)` is called with the global model after each round's aggregation.
    """
    if not shares or any(len(x) == 0 for x, _ in shares):
        raise ValueError("every simulated hospital needs at least one case")
    global_model = learning.build_model(learning.MODEL_CLASSIFIER, image_size, width, seed=seed)
    trainable = learning.trainable_mask(global_model)
    weights = learning.pack_weights(global_model)
    # One network per node, reloaded with the global weights every round, as a node builds one per message.
    node_models = [learning.build_model(learning.MODEL_CLASSIFIER, image_size, width) for _ in shares]
    optimizer_states = [None] * len(shares)
    counts = np.asarray([len(x) for x, _ in shares], dtype=np.float64)
    for server_round in range(1, rounds + 1):
        results = []
        for node, (x, y) in enumerate(shares):
            model = node_models[node]
            learning.unpack_weights(model, weights)
            stats = learning.train_round(model, learning.MODEL_CLASSIFIER, x, y, server_round=server_round,
                                         num_rounds=rounds, local_epochs=local_epochs, batch_size=batch_size,
                                         run_seed=seed, peak_lr=peak_lr,
                                         resume_optimizer=optimizer_states[node],
                                         logit_adjustment=logit_adjustment, proximal_mu=proximal_mu)
            optimizer_states[node] = stats.get("optimizer_state")
            results.append(learning.pack_weights(model))
        averaged = np.average(np.stack(results), axis=0, weights=counts).astype(np.float32)
        weights = learning.apply_server_step(weights, averaged, server_step, trainable)
        if after_round is not None:
            learning.unpack_weights(global_model, weights)
            after_round(server_round, global_model)
    learning.unpack_weights(global_model, weights)
    return global_model
