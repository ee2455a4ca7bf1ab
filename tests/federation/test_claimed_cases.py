"""A train reply's num-examples weighs its update in FedAvg's average: a node cannot claim more cases than
its hospital has reviewed on the platform (server_app.FederationGrid._cap_claimed_cases)."""

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
def test_the_platform_counts_a_hospitals_reviewed_cases():
    hospital = make_hospital("fl-a", "Fl A")
    add_reviewed_case(hospital), add_reviewed_case(hospital, "notumor")
    assert cases_on_record("fl-a") == 2 and cases_on_record("fl-gone") is None
