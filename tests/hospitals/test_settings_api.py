import pytest

from hospitals.models import AuditEvent, Hospital
from tests.hospitals.conftest import url

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "who, status",
    [("admin_a", 200), ("doctor_a", 200), ("owner", 200), ("outsider", 404), ("admin_b", 404), ("anonymous", 401)],
)
def test_read_settings(world, client_as, who, status):
    response = client_as(who).get(url("hospitals", world.a.slug, "settings"))
    assert response.status_code == status, response.content
    if status == 200:
        assert response.json() == {
            "slug": "st-anne", "name": "St Anne's", "patients_see_ai_results": "after_review",
            "federation_opt_in": False,
        }


@pytest.mark.parametrize(
    "who, status",
    [("admin_a", 200), ("doctor_a", 403), ("owner", 403), ("outsider", 404), ("admin_b", 404), ("anonymous", 401)],
)
def test_update_settings(world, client_as, who, status):
    response = client_as(who).patch(
        url("hospitals", world.a.slug, "settings"),
        {"patients_see_ai_results": "immediately", "federation_opt_in": True},
        format="json",
    )
    assert response.status_code == status, response.content
    hospital = Hospital.objects.get(pk=world.a.pk)
    changed = (hospital.patients_see_ai_results, hospital.federation_opt_in) == ("immediately", True)
    assert changed == (status == 200)
    if status == 200:
        event = AuditEvent.objects.get(action="hospital.settings_update")
        assert event.detail == "federation_opt_in=True, patients_see_ai_results=immediately"


def test_slug_and_name_are_read_only(world, client_as):
    response = client_as("admin_a").put(
        url("hospitals", world.a.slug, "settings"),
        {"slug": "renamed", "name": "Renamed", "patients_see_ai_results": "after_review", "federation_opt_in": True},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["slug"] == "st-anne" and response.json()["name"] == "St Anne's"


def test_invalid_choice_is_named(world, client_as):
    response = client_as("admin_a").patch(url("hospitals", world.a.slug, "settings"), {"patients_see_ai_results": "never"})
    assert response.status_code == 400 and "patients_see_ai_results" in response.json()["fields"]


def test_unchanged_settings_write_no_event(world, client_as):
    client_as("admin_a").patch(url("hospitals", world.a.slug, "settings"), {"federation_opt_in": False}, format="json")
    assert not AuditEvent.objects.filter(action="hospital.settings_update").exists()
