"""Admin pages: members, invitations, settings (frontend/views/admin.py) and accepting an invitation."""

import re

import pytest
from django.core import mail

from hospitals.models import AIResultVisibility, Invitation, Membership, Role

pytestmark = pytest.mark.django_db


def _urls(world):
    member = Membership.objects.get(user=world.doctor_a, hospital=world.a)
    return {
        "members": ("get", "/h/st-anne/members/"),
        "settings": ("get", "/h/st-anne/settings/"),
        "role": ("post", f"/h/st-anne/members/{member.pk}/role/"),
        "remove": ("post", f"/h/st-anne/members/{member.pk}/remove/"),
    }


def test_outsider_and_anonymous_and_non_admins_are_kept_out(client, world):
    for method, url in _urls(world).values():
        anonymous = getattr(client, method)(url)
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    # B's admin is an admin, but of another hospital: not found, as for a hospital that does not exist.
    client.force_login(world.admin_b)
    for method, url in _urls(world).values():
        assert getattr(client, method)(url, {"role": "admin"}).status_code == 404
    client.force_login(world.doctor_a2)
    for method, url in _urls(world).values():
        assert getattr(client, method)(url, {"role": "admin"}).status_code == 403
    assert Membership.objects.get(user=world.doctor_a, hospital=world.a).role == Role.DOCTOR


def test_admin_of_b_cannot_touch_a_member_of_a_through_b(client, world):
    member = Membership.objects.get(user=world.doctor_a, hospital=world.a)
    client.force_login(world.admin_b)
    assert client.post(f"/h/north-general/members/{member.pk}/remove/").status_code == 404
    assert client.post(f"/h/north-general/members/{member.pk}/role/", {"role": "admin"}).status_code == 404
    assert Membership.objects.filter(pk=member.pk, role=Role.DOCTOR).exists()


def test_members_page_lists_only_this_hospital(client, world):
    client.force_login(world.admin_a)
    html = client.get("/h/st-anne/members/").content.decode()
    assert "doctor1@st-anne.example" in html and "patient1@st-anne.example" in html
    assert "north.example" not in html


def test_invite_change_role_remove(client, world, django_capture_on_commit_callbacks):
    client.force_login(world.admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post("/h/st-anne/members/", {"email": "new.doctor@st-anne.example", "role": "doctor"},
                           follow=True)
    assert "Invitation sent to new.doctor@st-anne.example." in page.content.decode()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new.doctor@st-anne.example"]
    assert "new.doctor@st-anne.example" in page.content.decode().split("Pending invitations")[1]

    member = Membership.objects.get(user=world.doctor_a, hospital=world.a)
    client.post(f"/h/st-anne/members/{member.pk}/role/", {"role": "admin"})
    member.refresh_from_db()
    assert member.role == Role.ADMIN

    page = client.post(f"/h/st-anne/members/{member.pk}/remove/", follow=True)
    assert "doctor1@st-anne.example is no longer a member of St Anne&#x27;s." in page.content.decode()
    assert not Membership.objects.filter(pk=member.pk).exists()


def test_refusals_are_shown_as_sentences(client, world):
    client.force_login(world.admin_a)
    me = Membership.objects.get(user=world.admin_a, hospital=world.a)
    page = client.post(f"/h/st-anne/members/{me.pk}/role/", {"role": "doctor"}, follow=True)
    assert "last admin" in page.content.decode()
    page = client.post("/h/st-anne/members/", {"email": "doctor1@st-anne.example", "role": "doctor"}, follow=True)
    assert "already belongs to a member" in page.content.decode()


def test_revoke_invitation(client, world):
    client.force_login(world.admin_a)
    client.post("/h/st-anne/members/", {"email": "x@example.org", "role": "patient"})
    invitation = Invitation.objects.get(email="x@example.org")
    client.force_login(world.admin_b)
    assert client.post(f"/h/north-general/invitations/{invitation.pk}/revoke/").status_code == 404
    client.force_login(world.admin_a)
    client.post(f"/h/st-anne/invitations/{invitation.pk}/revoke/")
    assert not Invitation.objects.filter(pk=invitation.pk).exists()


def test_settings_page_saves_through_the_service(client, world):
    client.force_login(world.admin_a)
    page = client.get("/h/st-anne/settings/").content.decode()
    assert 'value="after_review" checked' in page
    client.post("/h/st-anne/settings/", {"patients_see_ai_results": "immediately", "federation_opt_in": "on"})
    world.a.refresh_from_db()
    assert world.a.patients_see_ai_results == AIResultVisibility.IMMEDIATELY and world.a.federation_opt_in
    page = client.post("/h/st-anne/settings/", {"patients_see_ai_results": "whenever"}, follow=True)
    assert "Choose when patients see AI results." in page.content.decode()
    world.a.refresh_from_db()
    assert world.a.patients_see_ai_results == AIResultVisibility.IMMEDIATELY


@pytest.fixture
def invite(client, world, django_capture_on_commit_callbacks):
    """invite(email): A's admin invites through the page; returns the token from the email sent."""

    def send(email, role="doctor"):
        client.force_login(world.admin_a)
        with django_capture_on_commit_callbacks(execute=True):
            client.post("/h/st-anne/members/", {"email": email, "role": role})
        client.logout()
        return re.search(r"invitation token: (\S+)", mail.outbox[-1].body).group(1)

    return send


def test_invitation_link_creates_the_account_and_signs_in(client, invite):
    token = invite("fresh@st-anne.example")
    page = client.get(f"/invite/{token}/")
    assert page.status_code == 200 and 'autocomplete="new-password"' in page.content.decode()
    weak = client.post(f"/invite/{token}/", {"password": "123", "password_again": "123"})
    assert "too short" in weak.content.decode()
    response = client.post(f"/invite/{token}/", {"password": "a-long-new-secret-5", "password_again": "a-long-new-secret-5"})
    assert response["Location"] == "/h/st-anne/"
    assert client.get("/h/st-anne/", follow=True).status_code == 200
    used = client.post(f"/invite/{token}/", {"password": "a-long-new-secret-5", "password_again": "a-long-new-secret-5"})
    assert "already been used" in used.content.decode()


def test_invitation_for_existing_account_still_asks_for_its_password(client, world, invite):
    token = invite("doctor@north.example")
    response = client.post(f"/invite/{token}/", {})
    assert response["Location"] == "/accounts/login/?next=/h/st-anne/"
    assert "_auth_user_id" not in client.session
    assert Membership.objects.filter(user=world.doctor_b, hospital=world.a).exists()


def test_bad_token_and_mismatched_passwords(client, world, invite):
    assert "not valid" in client.post("/invite/nonsense/", {"password": "a-long-new-secret-5"}).content.decode()
    token = invite("typo@st-anne.example")
    page = client.post(f"/invite/{token}/", {"password": "a-long-new-secret-5", "password_again": "a-long-new-secret-6"})
    assert "The two passwords differ" in page.content.decode()
