"""The hospital settings page (frontend/views/admin.py, hospital_settings): the emergency number."""

import pytest

pytestmark = pytest.mark.django_db


def test_admin_sets_and_clears_the_emergency_number_on_the_page(client, world):
    client.force_login(world.admin_a)
    assert 'name="emergency_phone"' in client.get("/h/st-anne/settings/").content.decode()
    form = {"patients_see_ai_results": "after_review", "emergency_phone": "  112 "}
    client.post("/h/st-anne/settings/", form)
    world.a.refresh_from_db()
    assert world.a.emergency_phone == "112"
    assert 'value="112"' in client.get("/h/st-anne/settings/").content.decode()
    client.post("/h/st-anne/settings/", {**form, "emergency_phone": ""})
    world.a.refresh_from_db()
    assert world.a.emergency_phone == ""


def test_a_number_that_is_not_one_is_refused_with_a_sentence_and_nothing_saved(client, world):
    client.force_login(world.admin_a)
    page = client.post("/h/st-anne/settings/", {"patients_see_ai_results": "immediately", "emergency_phone": "ring 999"},
                       follow=True).content.decode()
    assert "Enter a phone number" in page
    world.a.refresh_from_db()
    assert world.a.emergency_phone == "" and world.a.patients_see_ai_results == "after_review"


@pytest.mark.parametrize("who", ["doctor_a", "owner", "admin_b", "outsider"])
def test_only_this_hospitals_admin_changes_the_number(client, world, who):
    client.force_login(getattr(world, who))
    response = client.post("/h/st-anne/settings/", {"patients_see_ai_results": "after_review", "emergency_phone": "112"})
    assert response.status_code in (403, 404)
    world.a.refresh_from_db()
    assert world.a.emergency_phone == ""
