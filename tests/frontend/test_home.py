"""The start page, the hospital switcher and the friendly error pages (frontend/views/home.py, base.py)."""

import re

import pytest

from hospitals.models import Role
from hospitals.services import add_member

pytestmark = pytest.mark.django_db


def _without_csrf(html: bytes) -> bytes:
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", html)


def test_anonymous_is_sent_to_sign_in(client, world):
    for url in ("/", "/h/st-anne/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_member_of_one_hospital_goes_straight_there(client, world):
    client.force_login(world.patient_a)
    assert client.get("/")["Location"] == "/h/st-anne/"


def test_member_of_several_hospitals_chooses_and_can_switch(client, world):
    add_member(hospital=world.b, user=world.doctor_a, role=Role.DOCTOR)
    client.force_login(world.doctor_a)
    chooser = client.get("/")
    assert chooser.status_code == 200
    html = chooser.content.decode()
    assert 'href="/h/st-anne/"' in html and 'href="/h/north-general/"' in html

    page = client.get("/h/north-general/", follow=True).content.decode()
    # The switcher in the header names the hospital in view and links to the other.
    # Its name is what it shows, then what it does: no aria-label hides the hospital from a screen reader.
    assert '<summary>North General<span class="visually-hidden"> (switch hospital)</span></summary>' in page
    assert 'href="/h/st-anne/"' in page


def test_user_without_hospital_is_told_what_to_do(client, db):
    from tests.factories import make_user

    client.force_login(make_user())
    assert "Ask your hospital for an invitation link" in client.get("/").content.decode()


def test_outsider_gets_the_friendly_not_found_page(client, world):
    client.force_login(world.outsider)
    response = client.get("/h/st-anne/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
    # The same page as for a hospital that does not exist at all: no existence oracle.
    missing = client.get("/h/no-such-hospital/")
    assert missing.status_code == 404
    assert _without_csrf(missing.content) == _without_csrf(response.content)


def test_pages_load_only_local_assets(client, world):
    client.force_login(world.admin_a)
    html = client.get("/h/st-anne/", follow=True).content.decode()
    assert "http://" not in html and "https://" not in html
    assert '/static/frontend/css/app.css' in html


def test_platform_operator_lands_on_the_operator_pages(client, world, django_user_model):
    operator = django_user_model.objects.create_superuser("op@neurofed.example", "op@neurofed.example", "op-password-12")
    client.force_login(operator)
    assert client.get("/")["Location"] == "/operator/federation/"
    assert client.get("/", follow=True).status_code == 200
    # An operator who is also a member of two hospitals chooses, with the operator link in the header.
    add_member(hospital=world.a, user=operator, role=Role.ADMIN)
    add_member(hospital=world.b, user=operator, role=Role.ADMIN)
    chooser = client.get("/")
    assert chooser.status_code == 200 and 'href="/operator/federation/"' in chooser.content.decode()
