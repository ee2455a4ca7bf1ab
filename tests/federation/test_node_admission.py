"""Which node may serve which hospital (server_app.admission_problem), and what enrolment records
(services.enrolled_nodes). The same rules with real Flower processes: test_tls_and_node_auth.py."""

import pytest

from federation.models import NodeEnrolment
from federation.server_app import admission_problem
from federation.services import enrolled_nodes

ENROLLED = {101: "st-anne", 202: "north-general"}


def test_an_enrolled_node_is_admitted_for_its_own_hospital():
    assert admission_problem(101, "st-anne", enrolled=ENROLLED) is None


def test_an_enrolled_node_claiming_another_hospital_is_refused():
    assert admission_problem(202, "st-anne", enrolled=ENROLLED) == \
        "it says it serves st-anne but its key is enrolled for north-general"


def test_a_node_whose_key_is_not_enrolled_is_refused():
    assert admission_problem(303, "st-anne", enrolled=ENROLLED) == \
        "its key is not enrolled for any hospital"


def test_without_enrolment_the_claim_is_taken():
    # One node per hospital is the grid's rule (test_federation_grid.py): a second claim waits, unrefused.
    assert admission_problem(7, "st-anne", enrolled=None) is None


@pytest.mark.django_db
def test_enrolled_nodes_are_read_from_the_enrolments_and_enforced_under_node_auth(world, settings):
    settings.FEDERATION_NODE_AUTH = False
    assert enrolled_nodes() is None
    settings.FEDERATION_NODE_AUTH = True
    assert enrolled_nodes() == {}  # node authentication on and nothing enrolled: no node is believed
    settings.FEDERATION_NODE_AUTH = False
    NodeEnrolment.objects.create(hospital=world.a, node_id="18446744073709551615", public_key="ecdsa-sha2 AAAA")
    # Once a node is enrolled, unenrolled nodes serve no run whatever the setting.
    assert enrolled_nodes() == {18446744073709551615: "st-anne"}
