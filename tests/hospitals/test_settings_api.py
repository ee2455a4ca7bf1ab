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
            "federation_opt_in": False, "emergency_phone": "", "time_zone": "",
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


def test_admin_sets_the_emergency_number_and_patients_read_it_in_their_advice(world, client_as, api):
    from diagnostics.models import Scan
    from tests.diagnostics.helpers import finish, upload
    from tests.diagnostics.samples import jpeg_bytes

    response = client_as("admin_a").patch(
        url("hospitals", world.a.slug, "settings"), {"emergency_phone": " +33 15 "}, format="json"
    )
    assert response.status_code == 200 and response.json()["emergency_phone"] == "+33 15"
    assert AuditEvent.objects.get(action="hospital.settings_update").detail == "emergency_phone=+33 15"
    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, jpeg_bytes("glioma", 1)).json()["id"])
    finish(scan, "glioma", 0.8)
    detail = url("hospitals", world.a.slug, "scans", scan.id)
    client_as("doctor_a").post(f"{detail}review/", {"label": "glioma"}, format="json")
    action = client_as("owner").get(detail).json()["advice"]["emergency_action"]
    assert "+33 15" in action and "999" not in action
    # Another hospital's setting is its own.
    assert Hospital.objects.get(pk=world.b.pk).emergency_phone == ""


@pytest.mark.parametrize("phone", ["call 999", "+", "12345678901234567890123456789012", "<b>112</b>"])
def test_an_emergency_number_that_is_not_a_phone_number_is_refused(world, client_as, phone):
    response = client_as("admin_a").patch(
        url("hospitals", world.a.slug, "settings"), {"emergency_phone": phone}, format="json"
    )
    assert response.status_code == 400 and "emergency_phone" in response.json()["fields"], response.content
    assert Hospital.objects.get(pk=world.a.pk).emergency_phone == ""


@pytest.mark.parametrize("changes, sentence", [
    ({"emergency_phone": "call 999"}, "Enter a phone number"),
    ({"emergency_phone": "1" * 31}, "at most 30 characters"),
    ({"emergency_phone": "112", "patients_see_ai_results": "never"}, "not a valid choice"),
])
def test_the_service_itself_refuses_an_invalid_setting_whoever_calls_it(world, changes, sentence):
    # Commands and other apps call the service without a serializer or a form in front of it.
    from hospitals.errors import DomainError
    from hospitals.services import update_hospital_settings

    with pytest.raises(DomainError) as refused:
        update_hospital_settings(hospital=world.a, actor=world.admin_a, **changes)
    assert refused.value.code == "invalid_setting" and sentence in refused.value.detail
    hospital = Hospital.objects.get(pk=world.a.pk)
    assert (hospital.emergency_phone, hospital.patients_see_ai_results) == ("", "after_review")
    assert not AuditEvent.objects.filter(action="hospital.settings_update").exists()
    update_hospital_settings(hospital=world.a, actor=world.admin_a, emergency_phone="+44 (0)20 7946-0000")
    assert Hospital.objects.get(pk=world.a.pk).emergency_phone == "+44 (0)20 7946-0000"


def test_admin_sets_the_hospitals_time_zone_and_an_unknown_zone_is_refused(world, client_as):
    settings_url = url("hospitals", world.a.slug, "settings")
    refused = client_as("admin_a").patch(settings_url, {"time_zone": "Mars/Olympus_Mons"}, format="json")
    assert refused.status_code == 400 and "Choose a time zone" in str(refused.json()["fields"]["time_zone"])
    assert Hospital.objects.get(pk=world.a.pk).time_zone == ""

    response = client_as("admin_a").patch(settings_url, {"time_zone": "Asia/Kolkata"}, format="json")

    assert response.status_code == 200 and response.json()["time_zone"] == "Asia/Kolkata"
    assert AuditEvent.objects.get(action="hospital.settings_update").detail == "time_zone=Asia/Kolkata"
    assert Hospital.objects.get(pk=world.b.pk).time_zone == ""
