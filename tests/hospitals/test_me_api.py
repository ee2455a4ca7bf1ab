import pytest

from hospitals.models import Role
from hospitals.services import add_member
from tests.factories import make_user
from tests.hospitals.conftest import url

pytestmark = pytest.mark.django_db


def test_me_lists_user_and_memberships(world, client_as):
    add_member(hospital=world.b, user=world.doctor_a, role=Role.PATIENT)
    response = client_as("doctor_a").get(url("me"))
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == "doctor1@st-anne.example" and body["user"]["id"] == world.doctor_a.pk
    assert {(m["slug"], m["role"]) for m in body["memberships"]} == {("st-anne", "doctor"), ("north-general", "patient")}
    assert "password" not in str(body)


def test_me_anonymous_is_401(db, api):
    response = api().get(url("me"))
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


@pytest.mark.parametrize("who, slugs", [("admin_a", ["st-anne"]), ("outsider", ["north-general"]), ("owner", ["st-anne"])])
def test_my_hospitals(world, client_as, who, slugs):
    response = client_as(who).get(url("hospitals"))
    assert response.status_code == 200
    assert [h["slug"] for h in response.json()] == slugs
    assert response.json()[0]["role"] == getattr(world, who).memberships.get().role


def test_my_hospitals_anonymous_is_401(db, api):
    assert api().get(url("hospitals")).status_code == 401


def test_platform_operator_belongs_to_no_hospital(world, api):
    operator = make_user("operator@neurofed.example", is_superuser=True, is_staff=True)
    assert api(operator).get(url("hospitals")).json() == []
    assert api(operator).get(url("me")).json()["memberships"] == []
    for path in ("members", "settings", "audit", "invitations"):
        assert api(operator).get(url("hospitals", world.a.slug, path)).status_code == 404
