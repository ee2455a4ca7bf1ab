"""Answers that may carry patient details are never cached (neurofed/privacy.py)."""

import pytest

from hospitals.models import Patient

pytestmark = pytest.mark.django_db


def test_pages_and_api_answers_are_not_kept_by_the_browser(client, world, api):
    record = Patient.objects.get(hospital=world.a, user=world.owner)
    client.force_login(world.doctor_a)
    for url in (f"/h/st-anne/patients/{record.pk}/", "/h/st-anne/worklist/", "/accounts/login/"):
        cache_control = client.get(url)["Cache-Control"]
        assert "no-store" in cache_control and "private" in cache_control, url
    answer = api(world.doctor_a).get(f"/api/v1/hospitals/st-anne/patients/{record.pk}/")
    assert answer.status_code == 200 and "no-store" in answer["Cache-Control"]


def test_a_views_own_policy_is_kept(client, world):
    client.force_login(world.admin_a)
    assert client.get("/h/st-anne/audit/export.csv")["Cache-Control"] == "no-store"

