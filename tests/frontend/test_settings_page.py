"""The hospital settings page (frontend/views/admin.py, hospital_settings): the emergency number."""

import re

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


def test_a_refused_form_comes_back_as_submitted_with_the_error_beside_its_field(client, world):
    client.force_login(world.admin_a)
    response = client.post("/h/st-anne/settings/", {"patients_see_ai_results": "immediately", "federation_opt_in": "on",
                                                     "emergency_phone": "+44 20 7946 0000 <b>x</b>"})
    page = response.content.decode()
    assert response.status_code == 400
    assert 'value="immediately" checked' in page and 'value="after_review" checked' not in page
    assert 'name="federation_opt_in" checked' in page
    assert 'value="+44 20 7946 0000 &lt;b&gt;x&lt;/b&gt;"' in page
    phone = re.search(r'<input type="tel"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in phone and 'aria-describedby="emergency-phone-error emergency-phone-help"' in phone
    assert re.search(r'id="emergency-phone-error"><li>Enter a phone number: digits', page)
    world.a.refresh_from_db()
    assert (world.a.patients_see_ai_results, world.a.federation_opt_in, world.a.emergency_phone) == (
        "after_review", False, "")


def test_no_choice_of_visibility_is_marked_on_the_choices_and_keeps_the_number(client, world):
    client.force_login(world.admin_a)
    response = client.post("/h/st-anne/settings/", {"emergency_phone": "112"})
    page = response.content.decode()
    assert response.status_code == 400 and 'value="112"' in page
    radios = re.findall(r'<input type="radio"[^>]*>', page)
    assert len(radios) == 2 and all('aria-invalid="true"' in r and 'aria-describedby="visibility-error"' in r
                                    for r in radios)
    assert re.search(r'id="visibility-error"><li>Choose when patients see AI results.', page)
    world.a.refresh_from_db()
    assert world.a.emergency_phone == ""


def test_a_valid_form_is_saved_and_shown_without_errors(client, world):
    client.force_login(world.admin_a)
    response = client.post("/h/st-anne/settings/", {"patients_see_ai_results": "after_review", "emergency_phone": "112"})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Settings saved." in page and 'aria-invalid' not in page


def test_the_page_says_patients_see_what_a_doctor_reviewed_kept_or_changed(client, world):
    client.force_login(world.admin_a)
    page = client.get("/h/st-anne/settings/").content.decode()
    assert "Only after a doctor reviews the scan" in page
    assert "doctor confirms" not in page and "confirmed result" not in page
    assert "whether the doctor kept the AI's finding or changed it" in page
