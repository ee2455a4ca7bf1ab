"""GET /api/v1/hospitals/<slug>/federation/cases/: a hospital's admin reads how many cases its node would
train on, beside the fewest a run counts a hospital with; nobody else reads them."""

import numpy as np
import pytest

from tests.factories import add_reviewed_case, make_user

pytestmark = pytest.mark.django_db


def cases(hospital):
    return f"/api/v1/hospitals/{hospital.slug}/federation/cases/"


def test_the_admin_reads_their_own_hospitals_counts_and_the_minimum(api, world, settings):
    settings.FEDERATION_MIN_NODE_CASES = 20
    outline = np.zeros((64, 64), bool)
    outline[20:30, 20:30] = True
    add_reviewed_case(world.a, "glioma", mask=outline), add_reviewed_case(world.a, "notumor")
    add_reviewed_case(world.a, "meningioma")  # reviewed for its label only: no outline a doctor drew
    add_reviewed_case(world.b, "pituitary", mask=outline)
    response = api(world.admin_a).get(cases(world.a))
    assert response.status_code == 200
    assert response.json() == {"reviewed_cases": 3, "outlined_tumours": 1, "minimum_cases": 20}
    assert api(world.admin_b).get(cases(world.b)).json() == {"reviewed_cases": 1, "outlined_tumours": 1,
                                                             "minimum_cases": 20}


@pytest.mark.parametrize("who, status", [("doctor_a", 403), ("patient_a", 403), ("admin_b", 404), ("doctor_b", 404)])
def test_teammates_without_the_admin_role_and_outsiders_read_nothing(api, world, who, status):
    add_reviewed_case(world.a)
    response = api(getattr(world, who)).get(cases(world.a))
    assert response.status_code == status and "reviewed_cases" not in response.json()


def test_the_operator_and_the_anonymous_read_nothing(api, world):
    operator = make_user("operator@neurofed.example", is_superuser=True, is_staff=True)
    assert api(operator).get(cases(world.a)).status_code == 404
    assert api().get(cases(world.a)).status_code == 401
    assert api(world.admin_a).get("/api/v1/hospitals/nowhere/federation/cases/").status_code == 404
