"""What FederationGrid does between Flower's strategy and the nodes, without Flower processes: a node cannot
claim more cases than its hospital has reviewed (its num-examples weighs its update in FedAvg's average),
a sampler left waiting for a node that left ends the run, and a node restarted under a new id serves its
hospital once the SuperLink no longer lists the old one."""

from types import SimpleNamespace

import pytest

from federation.server_app import FederationGrid
from federation.services import cases_on_record
from tests.factories import add_reviewed_case, make_hospital
from tests.federation.test_server_step import task_identity, train_reply  # noqa: F401 - the fixture is used

RECORDS = {"fl-a": 12}


def grid():
    return FederationGrid(None, hospitals={"fl-a"}, min_nodes=1, node_wait_s=1, cases_on_record=RECORDS.get)


def test_a_node_claiming_more_cases_than_its_hospital_has_weighs_as_many_as_it_has():
    reply = train_reply([0.0], 10**12)
    grid()._cap_claimed_cases(7, "fl-a", reply)
    assert reply.content.metric_records["metrics"]["num-examples"] == 12


def test_a_true_claim_is_left_as_it_is():
    reply = train_reply([0.0], 9)
    grid()._cap_claimed_cases(7, "fl-a", reply)
    assert reply.content.metric_records["metrics"]["num-examples"] == 9


@pytest.mark.django_db
def test_the_platform_counts_the_cases_a_hospitals_node_trains_each_model_on():
    import numpy as np

    hospital = make_hospital("fl-a", "Fl A")
    outline = np.zeros((64, 64), bool)
    outline[20:30, 20:30] = True
    add_reviewed_case(hospital), add_reviewed_case(hospital, "notumor")
    add_reviewed_case(hospital, "meningioma", mask=outline)
    assert cases_on_record("fl-a") == 3 and cases_on_record("fl-gone") is None
    # The segmenter learns from outlines: the tumour outlined and the empty one of "No tumour", not the
    # glioma whose outline no doctor drew.
    assert cases_on_record("fl-a", "segmenter") == 2


class Shrinking:
    """Three nodes at first, then two: one left between Flower's two questions."""

    def __init__(self):
        self.answers = 0

    def get_node_ids(self):
        self.answers += 1
        return [1, 2, 3] if self.answers == 1 else [1, 2]


def test_a_sampler_waiting_for_a_node_that_left_ends_the_run_after_the_node_wait():
    import time

    from federation.server_app import SAMPLER_POLL_GAP_S, RunAborted

    fed = FederationGrid(Shrinking(), hospitals={"fl-a", "fl-b", "fl-c"}, min_nodes=2, node_wait_s=0.2)
    fed.node_hospital = {1: "fl-a", 2: "fl-b", 3: "fl-c"}
    assert len(fed.get_node_ids()) == 3  # Flower sizes its sample from this answer: three
    deadline = time.monotonic() + 0.2 + SAMPLER_POLL_GAP_S + 3
    with pytest.raises(RunAborted, match=r"A node left while the round was choosing its nodes.*connected: fl-a, "
                                         r"fl-b"):
        while time.monotonic() < deadline:  # Flower's sampler, asking once a second (here faster)
            assert len(fed.get_node_ids()) == 2
            time.sleep(0.5)


def test_rounds_that_follow_each_other_quickly_are_not_taken_for_a_wait(monkeypatch):
    """Short rounds ask for the nodes less than a few seconds apart: each exchange starts a new wait."""
    import time

    from federation import server_app

    class Steady:
        def get_node_ids(self):
            return [1, 2]

    fed = FederationGrid(Steady(), hospitals={"fl-a", "fl-b"}, min_nodes=2, node_wait_s=0.2)
    fed.node_hospital = {1: "fl-a", 2: "fl-b"}
    monkeypatch.setattr(fed, "_exchange", lambda messages, timeout: ([], {}))
    monkeypatch.setattr(server_app, "SAMPLER_POLL_GAP_S", 0.3)
    monkeypatch.setattr(fed, "_dropout", lambda *args: None)
    for _ in range(6):  # six quick rounds, 2 s in all
        assert len(fed.get_node_ids()) == 2
        with pytest.raises(server_app.RunAborted, match="only 0 of 1 nodes replied"):
            fed.send_and_receive([train_reply([0.0], 1)])
        time.sleep(0.25)


class Restarting:
    """fl-a's node 1 dies and comes back as node 3; the SuperLink lists the dead node 1 a while longer."""

    def __init__(self):
        self.answers = iter([[1, 2], [1, 2, 3], [2, 3], [2, 3]])

    def get_node_ids(self):
        return next(self.answers)


def _identities(hospital_of):
    def exchange(messages, timeout):
        return [SimpleNamespace(has_error=lambda: False,
                                content=SimpleNamespace(config_records={"identity": {"hospital": hospital_of[n]}}),
                                metadata=SimpleNamespace(reply_to_message_id="", src_node_id=n))
                for n in (m.metadata.dst_node_id for m in messages)], {}
    return exchange


def test_a_restarted_node_serves_its_hospital_once_the_superlink_no_longer_lists_its_predecessor(monkeypatch):
    fed = FederationGrid(Restarting(), hospitals={"fl-a", "fl-b"}, min_nodes=2, node_wait_s=600)
    monkeypatch.setattr(fed, "_exchange", _identities({1: "fl-a", 2: "fl-b", 3: "fl-a"}))
    assert sorted(fed.get_node_ids()) == [1, 2]
    assert sorted(fed.get_node_ids()) == [1, 2]  # one node per hospital: 3 waits while 1 is listed
    assert fed.waiting_nodes == {3: "fl-a"} and not fed.refused_nodes
    assert sorted(fed.get_node_ids()) == [2, 3]
    assert fed.node_hospital[3] == "fl-a" and not fed.waiting_nodes
