"""What a finished round records about the nodes' share of its wall time."""

from federation.services import nodes_critical_path_s


def test_node_compute_is_the_slowest_training_plus_the_slowest_evaluation():
    nodes = [
        {"hospital": "st-anne", "train_load_s": 1.0, "train_s": 9.0, "eval_load_s": 1.0, "eval_s": 1.0},
        {"hospital": "north-general", "train_load_s": 1.0, "train_s": 6.0, "eval_load_s": 1.0, "eval_s": 3.0},
    ]
    # Each phase waits for its slowest node: 10 s of training (St Anne's), then 4 s of evaluation (North
    # General's). No single node's own total (12 s, 11 s) is the time the nodes held the round up.
    assert nodes_critical_path_s(nodes) == 14.0


def test_a_node_that_dropped_out_of_evaluation_counts_for_its_training_only():
    nodes = [
        {"hospital": "st-anne", "train_load_s": 0.5, "train_s": 4.0},
        {"hospital": "north-general", "train_load_s": 0.5, "train_s": 3.0, "eval_load_s": 0.5, "eval_s": 1.5},
    ]
    assert nodes_critical_path_s(nodes) == 6.5
    assert nodes_critical_path_s([]) is None
