"""DRF's browsable API (an API address opened in a browser) answers each member as the JSON API does.

The browsable page decides which forms to draw by asking the view's permissions again, and only a
refusal of DRF's own kind counts as "no form" there: any other exception escaped as a 403 for reads the
role may make, and a view with no form serializer failed with a 500.
"""

import pytest

from hospitals.models import Membership
from hospitals.services import invite_member
from tests.factories import make_patient, make_scan

pytestmark = pytest.mark.django_db

ADDRESSES = ["me/", "hospitals/", "federation/runs/"] + [f"hospitals/st-anne/{path}" for path in (
    "members/", "members/{member}/", "patients/", "patients/{patient}/", "settings/", "invitations/",
    "invitations/{invitation}/", "audit/", "scans/", "scans/{scan}/", "scans/search/", "scans/{scan}/review/",
    "federation/cases/",
)]


@pytest.fixture
def objects(world):
    patient = make_patient(world.a)
    invitation, _ = invite_member(hospital=world.a, email="new@st-anne.example", role="doctor", actor=world.admin_a)
    return {
        "member": Membership.objects.get(hospital=world.a, user=world.doctor_a2).pk,
        "patient": patient.pk,
        "invitation": invitation.pk,
        "scan": make_scan(world.a, patient).pk,
    }


@pytest.mark.parametrize("who", ["admin_a", "doctor_a", "patient_a", "outsider"])
@pytest.mark.parametrize("address", ADDRESSES)
def test_a_browser_is_answered_as_the_api_answers(client, world, objects, who, address):
    client.force_login(getattr(world, who))
    url = "/api/v1/" + address.format(**objects)
    answered = client.get(url, HTTP_ACCEPT="application/json").status_code
    page = client.get(url, HTTP_ACCEPT="text/html")
    assert page.status_code == answered, page.content[:500]
    if answered == 200:
        assert page["Content-Type"].startswith("text/html")
    # OPTIONS (DRF's description of the address) builds its form from the same serializer as the page.
    assert client.options(url, HTTP_ACCEPT="application/json").status_code < 500
