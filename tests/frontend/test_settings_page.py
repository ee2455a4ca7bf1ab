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


def _form_fields(page: str) -> dict:
    """What a browser would post from the settings page as it was rendered, unchanged."""
    fields = dict(re.findall(r'<input type="hidden" name="(shown_\w+)" value="([^"]*)"', page))
    fields["patients_see_ai_results"] = re.search(r'name="patients_see_ai_results" value="(\w+)" checked', page)[1]
    if re.search(r'name="federation_opt_in" checked', page):
        fields["federation_opt_in"] = "on"
    fields["emergency_phone"] = re.search(r'name="emergency_phone"[^>]*value="([^"]*)"', page)[1]
    return fields


def test_a_form_opened_before_another_admin_opted_in_does_not_opt_the_hospital_out(client, world):
    """Only what the admin changed on the page is saved: the other settings stand as another admin (or the
    Federation page) left them after the page was shown."""
    client.force_login(world.admin_a)
    fields = _form_fields(client.get("/h/st-anne/settings/").content.decode())
    assert "federation_opt_in" not in fields and fields["shown_federation_opt_in"] == ""
    type(world.a).objects.filter(pk=world.a.pk).update(federation_opt_in=True, time_zone="Europe/Paris")
    response = client.post("/h/st-anne/settings/", {**fields, "emergency_phone": "112"})
    assert response.status_code == 302
    world.a.refresh_from_db()
    assert (world.a.emergency_phone, world.a.federation_opt_in, world.a.time_zone) == ("112", True, "Europe/Paris")
    # Unticked on the page, it is saved.
    fields = _form_fields(client.get("/h/st-anne/settings/").content.decode())
    assert fields.pop("federation_opt_in") == "on"
    assert client.post("/h/st-anne/settings/", fields).status_code == 302
    world.a.refresh_from_db()
    assert world.a.federation_opt_in is False and world.a.emergency_phone == "112"


def test_a_refused_form_keeps_what_its_page_first_showed(client, world):
    client.force_login(world.admin_a)
    fields = _form_fields(client.get("/h/st-anne/settings/").content.decode())
    type(world.a).objects.filter(pk=world.a.pk).update(federation_opt_in=True)
    refused = client.post("/h/st-anne/settings/", {**fields, "emergency_phone": "call me"})
    assert refused.status_code == 400
    # Corrected and saved again from the refused page: still not an opt-out nobody chose.
    again = _form_fields(refused.content.decode())
    assert again["shown_federation_opt_in"] == "" and "federation_opt_in" not in again
    assert client.post("/h/st-anne/settings/", {**again, "emergency_phone": "112"}).status_code == 302
    world.a.refresh_from_db()
    assert world.a.federation_opt_in is True and world.a.emergency_phone == "112"
