"""A form posted after the sign-in ended (frontend.views.base.signed_in): back to its page, nothing changed."""

from urllib.parse import quote

import pytest

from diagnostics.models import Scan
from hospitals.models import Membership
from tests.diagnostics.helpers import finish, upload
from tests.diagnostics.samples import jpeg_bytes
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def scan_a(world, api):
    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, jpeg_bytes("glioma", 7)).json()["id"])
    finish(scan, "glioma", 0.9)
    return scan


def test_a_removal_posted_after_the_sign_in_ended_comes_back_to_the_scan(client, world, scan_a):
    page = f"/h/st-anne/scans/{scan_a.id}/"
    response = client.post(f"{page}remove/", HTTP_REFERER=f"http://testserver{page}")
    assert response.status_code == 302 and response["Location"] == f"/accounts/login/?next={quote(page)}"
    assert Scan.objects.filter(pk=scan_a.pk).exists()
    login_page = client.get(response["Location"]).content.decode()
    assert "Your sign-in had ended, so nothing was changed." in login_page
    signed_in = client.post(response["Location"], {"username": world.owner.email, "password": PASSWORD})
    assert signed_in["Location"] == page and client.get(page).status_code == 200


def test_an_admins_form_comes_back_to_the_members_page_with_its_filters(client, world):
    member = Membership.objects.get(user=world.doctor_a, hospital=world.a)
    listing = "/h/st-anne/members/?role=doctor"
    response = client.post(f"/h/st-anne/members/{member.pk}/remove/", HTTP_REFERER=f"http://testserver{listing}")
    assert response["Location"] == f"/accounts/login/?next={quote(listing)}"
    assert Membership.objects.filter(pk=member.pk).exists()


def test_a_form_posted_from_another_site_goes_to_the_start_page(client, world, scan_a):
    response = client.post(f"/h/st-anne/scans/{scan_a.id}/remove/", HTTP_REFERER="https://evil.example/h/x/")
    assert response["Location"] == f"/accounts/login/?next={quote('/')}"


def test_a_page_opened_after_the_sign_in_ended_comes_back_to_itself(client, world):
    response = client.get("/h/st-anne/worklist/?class=glioma")
    assert response["Location"] == f"/accounts/login/?next={quote('/h/st-anne/worklist/?class=glioma')}"


def test_a_password_change_posted_after_the_sign_in_ended_says_so(client, world):
    response = client.post("/accounts/password/", {"old_password": "x", "new_password1": "y", "new_password2": "y"},
                           HTTP_REFERER="http://testserver/accounts/password/")
    assert response["Location"] == f"/accounts/login/?next={quote('/accounts/password/')}"
    assert "Your sign-in had ended" in client.get(response["Location"]).content.decode()
