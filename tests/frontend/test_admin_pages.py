"""Admin pages: members, invitations, settings (frontend/views/admin.py) and accepting an invitation."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from diagnostics.models import Scan
from frontend.views.admin import MEMBERS_PAGE_SIZE
from frontend.views.audit import AUDIT_PAGE_SIZE
from hospitals.audit import record_audit
from hospitals.models import AIResultVisibility, Invitation, Membership, Patient, Role
from diagnostics.services import remove_scan
from hospitals.services import update_patient
from tests.diagnostics.helpers import patient_of, upload
from tests.diagnostics.samples import jpeg_bytes
from tests.factories import make_member, make_patient, make_user

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


@pytest.mark.django_db(transaction=True)
def test_an_invitation_whose_mail_fails_says_so_and_stays_pending(client, world, unreachable_mail_relay):
    client.force_login(world.admin_a)
    page = client.post("/h/st-anne/members/", {"email": "new.doctor@st-anne.example", "role": "doctor"},
                       follow=True)
    html = page.content.decode()
    assert "Invitation sent" not in html
    assert "the email to new.doctor@st-anne.example could not be sent" in html
    assert "new.doctor@st-anne.example" in html.split("Pending invitations")[1]


@pytest.mark.django_db(transaction=True)
def test_a_replacing_invitation_whose_mail_fails_says_the_earlier_link_is_dead_too(client, world, settings):
    # The admin must learn that the invitee now holds no working link: the earlier mail's was revoked.
    client.force_login(world.admin_a)
    client.post("/h/st-anne/members/", {"email": "new.doctor@st-anne.example", "role": "doctor"})
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    page = client.post("/h/st-anne/members/", {"email": "new.doctor@st-anne.example", "role": "doctor"},
                       follow=True)
    html = page.content.decode()
    assert "the email to new.doctor@st-anne.example could not be sent" in html
    assert "the link in that earlier email no longer works" in html


def test_refusals_are_shown_as_sentences(client, world):
    client.force_login(world.admin_a)
    me = Membership.objects.get(user=world.admin_a, hospital=world.a)
    page = client.post(f"/h/st-anne/members/{me.pk}/role/", {"role": "doctor"}, follow=True)
    assert "last admin" in page.content.decode()
    page = client.post("/h/st-anne/members/", {"email": "doctor1@st-anne.example", "role": "doctor"}, follow=True)
    assert "already belongs to a member" in page.content.decode()


def test_revoke_invitation(client, world):
    client.force_login(world.admin_a)
    client.post("/h/st-anne/members/", {"email": "x@example.org", "role": "doctor"})
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

    def send(email, role="doctor", **patient):
        client.force_login(world.admin_a)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/h/st-anne/members/", {"email": email, "role": role, **patient})
        assert response.status_code == 302, response.content
        client.logout()
        return re.search(r"invitation token: (\S+)", mail.outbox[-1].body).group(1)

    return send


def test_invitation_link_creates_the_account_and_signs_in(client, invite):
    token = invite("fresh@st-anne.example")
    page = client.get(f"/invite/{token}/", follow=True)
    assert page.status_code == 200 and 'autocomplete="new-password"' in page.content.decode()
    weak = client.post(f"/invite/{token}/", {"password": "123", "password_again": "123"})
    assert "too short" in weak.content.decode()
    response = client.post(f"/invite/{token}/", {"password": "a-long-new-secret-5", "password_again": "a-long-new-secret-5"})
    assert response["Location"] == "/h/st-anne/"
    assert client.get("/h/st-anne/", follow=True).status_code == 200
    again = client.post(f"/invite/{token}/", {"password": "a-long-new-secret-5", "password_again": "a-long-new-secret-5"})
    assert again.status_code == 200 and "You have accepted this invitation" in again.content.decode()


def test_a_password_with_a_nul_is_refused_rather_than_stored_where_no_sign_in_can_use_it(client, invite):
    token = invite("fresh@st-anne.example")
    nul = "good-pass\x00word-1"
    refused = client.post(f"/invite/{token}/", {"password": nul, "password_again": nul})
    assert refused.status_code == 200
    assert "A password cannot contain a NUL character." in refused.content.decode()
    assert not get_user_model().objects.filter(email="fresh@st-anne.example").exists()


def test_back_after_accepting_tells_the_one_who_accepted_and_nobody_else(client, world, invite):
    token = invite("fresh@st-anne.example")
    client.post(f"/invite/{token}/", {"password": "a-long-new-secret-5", "password_again": "a-long-new-secret-5"})
    page = client.get(f"/invite/{token}/")
    html = page.content.decode()
    assert page.status_code == 200 and "You have accepted this invitation to join St Anne&#x27;s." in html
    assert 'href="/h/st-anne/">Go to St Anne&#x27;s</a>' in html and "already been used" not in html
    client.force_login(world.doctor_a)  # someone else signed in on the same computer
    other = client.get(f"/invite/{token}/")
    assert other.status_code == 410 and "already been used" in other.content.decode()
    assert "You have accepted" not in other.content.decode()


def test_invitation_for_existing_account_still_asks_for_its_password(client, world, invite):
    token = invite("doctor@north.example")
    response = client.post(f"/invite/{token}/", {})
    assert response["Location"] == "/accounts/login/?next=/h/st-anne/"
    assert "_auth_user_id" not in client.session
    assert Membership.objects.filter(user=world.doctor_b, hospital=world.a).exists()


def test_bad_token_and_mismatched_passwords(client, world, invite):
    assert "no longer works" in client.post("/invite/nonsense/", {"password": "a-long-new-secret-5"}).content.decode()
    token = invite("typo@st-anne.example")
    page = client.post(f"/invite/{token}/", {"password": "a-long-new-secret-5", "password_again": "a-long-new-secret-6"})
    assert "The two passwords differ" in page.content.decode()


def test_invited_patient_gets_a_record_and_can_upload(client, world, invite):
    token = invite("new.patient@st-anne.example", "patient", full_name="Grace Hopper",
                   date_of_birth="1970-12-09", medical_record_number="MRN-1906")
    patient = Invitation.objects.get(email="new.patient@st-anne.example").patient
    assert (patient.hospital, patient.full_name, str(patient.date_of_birth), patient.medical_record_number) == (
        world.a, "Grace Hopper", "1970-12-09", "MRN-1906"
    )
    client.post(f"/invite/{token}/", {"password": "a-long-new-secret-5", "password_again": "a-long-new-secret-5"})
    patient.refresh_from_db()
    assert patient.user.email == "new.patient@st-anne.example"
    response = upload(client, world.a, jpeg_bytes("glioma", 0))
    assert response.status_code == 201, response.content
    assert Scan.objects.get(pk=response.json()["id"]).patient == patient


def test_patient_invitation_needs_a_name_and_keeps_what_was_typed(client, world):
    client.force_login(world.admin_a)
    page = client.post("/h/st-anne/members/", {"email": "nameless@st-anne.example", "role": "patient",
                                               "medical_record_number": "MRN-77", "date_of_birth": "23/04/1980"})
    html = page.content.decode()
    assert page.status_code == 400 and "Enter the patient&#x27;s full name" in html and "year-month-day" in html
    assert 'value="nameless@st-anne.example"' in html and 'value="MRN-77"' in html
    assert not Invitation.objects.filter(email="nameless@st-anne.example").exists()
    assert not Patient.objects.filter(hospital=world.a, full_name="").exists()


def test_refused_patient_invitation_leaves_no_record_behind(client, world):
    # MRN-1 belongs to a patient who already has an account: a second account cannot take it.
    update_patient(hospital=world.a, patient=patient_of(world.patient_a2, world.a), actor=None,
                   medical_record_number="MRN-1")
    client.force_login(world.admin_a)
    before = Patient.objects.filter(hospital=world.a).count()
    page = client.post("/h/st-anne/members/", {"email": "doctor1@st-anne.example", "role": "patient",
                                               "full_name": "Someone"})
    assert page.status_code == 400 and "already belongs to a member" in page.content.decode()
    page = client.post("/h/st-anne/members/", {"email": "other@st-anne.example", "role": "patient",
                                               "full_name": "Someone", "medical_record_number": "MRN-1"})
    assert "medical record number already exists" in page.content.decode()
    assert Patient.objects.filter(hospital=world.a).count() == before
    assert not Invitation.objects.filter(email__in=["doctor1@st-anne.example", "other@st-anne.example"]).exists()


def test_inviting_a_patient_again_reuses_their_record(client, world):
    client.force_login(world.admin_a)
    details = {"email": "again@st-anne.example", "role": "patient", "full_name": "Alan Turing",
               "medical_record_number": "MRN-1912"}
    client.post("/h/st-anne/members/", details)
    first = Invitation.objects.get(email="again@st-anne.example").patient
    response = client.post("/h/st-anne/members/", {**details, "full_name": "Alan M. Turing"})
    assert response.status_code == 302
    second = Invitation.objects.get(email="again@st-anne.example").patient
    assert second.pk == first.pk and second.full_name == "Alan M. Turing"
    assert Patient.objects.filter(hospital=world.a, mrn_digest=first.mrn_digest).count() == 1


def test_members_page_asks_for_patient_details_beside_the_role(client, world):
    client.force_login(world.admin_a)
    html = client.get("/h/st-anne/members/").content.decode()
    for name in ("full_name", "date_of_birth", "medical_record_number"):
        assert f'name="{name}"' in html


def _confirm_prompts(html: str) -> dict:
    """The confirm prompt of each POST form, by the form's action."""
    return dict(re.findall(r'<form method="post" action="([^"]+)"[^>]*?data-confirm="([^"]+)"', html))


def test_role_change_remove_and_revoke_ask_first(client, world):
    client.force_login(world.admin_a)
    client.post("/h/st-anne/members/", {"email": "pending@st-anne.example", "role": "doctor"})
    invitation = Invitation.objects.get(email="pending@st-anne.example")
    member = Membership.objects.get(user=world.doctor_a, hospital=world.a)
    prompts = _confirm_prompts(client.get("/h/st-anne/members/").content.decode())
    assert "Change the role of doctor1@st-anne.example?" in prompts[f"/h/st-anne/members/{member.pk}/role/"]
    assert "Remove doctor1@st-anne.example" in prompts[f"/h/st-anne/members/{member.pk}/remove/"]
    assert "Revoke the invitation to pending@st-anne.example?" in prompts[
        f"/h/st-anne/invitations/{invitation.pk}/revoke/"]


def test_admin_who_demotes_themselves_lands_on_their_new_start_page(client, world):
    other_admin = Membership.objects.get(user=world.doctor_a, hospital=world.a)
    client.force_login(world.admin_a)
    client.post(f"/h/st-anne/members/{other_admin.pk}/role/", {"role": "admin"})
    me = Membership.objects.get(user=world.admin_a, hospital=world.a)
    response = client.post(f"/h/st-anne/members/{me.pk}/role/", {"role": "doctor"})
    assert response["Location"] == "/h/st-anne/"
    page = client.get("/h/st-anne/", follow=True)
    assert page.status_code == 200 and page.redirect_chain[-1][0] == "/h/st-anne/worklist/"
    assert "You are no longer an admin of St Anne&#x27;s" in page.content.decode()
    me.refresh_from_db()
    assert me.role == Role.DOCTOR


def test_invitation_page_names_the_hospital_and_role_before_asking_for_a_password(client, invite):
    token = invite("named@st-anne.example", "doctor")
    html = client.get(f"/invite/{token}/", follow=True).content.decode()
    assert "<strong>St Anne&#x27;s</strong> invites named@st-anne.example to join as doctor." in html


def test_used_expired_or_unknown_link_says_so_before_any_password(client, world, invite):
    unknown = client.get("/invite/nonsense/")
    assert unknown.status_code == 404 and "This invitation link no longer works" in unknown.content.decode()
    assert 'type="password"' not in unknown.content.decode()
    expired = invite("late@st-anne.example")
    Invitation.objects.filter(email="late@st-anne.example").update(expires_at=timezone.now() - timedelta(minutes=1))
    page = client.get(f"/invite/{expired}/")
    assert page.status_code == 410 and "has expired" in page.content.decode()
    assert 'type="password"' not in page.content.decode()
    used = invite("used@st-anne.example")
    client.post(f"/invite/{used}/", {"password": "a-long-new-secret-5", "password_again": "a-long-new-secret-5"})
    client.logout()
    page = client.get(f"/invite/{used}/")
    assert page.status_code == 410 and "already been used" in page.content.decode()
    assert 'type="password"' not in page.content.decode()


def test_inviting_a_patient_the_hospital_already_holds_gives_that_record_an_account(client, world, invite):
    held = make_patient(world.a, "Ada Lovelace", medical_record_number="MRN-1815")  # made for a doctor's uploads
    claimed = make_patient(world.a, "Charles Babbage", medical_record_number="MRN-1791")
    client.force_login(world.admin_a)
    client.post("/h/st-anne/members/", {"email": "babbage@st-anne.example", "role": "patient",
                                        "full_name": "Charles Babbage", "medical_record_number": "MRN-1791"})
    assert Invitation.objects.get(email="babbage@st-anne.example").patient == claimed
    # Another address cannot take a record a pending invitation already names.
    page = client.post("/h/st-anne/members/", {"email": "impostor@st-anne.example", "role": "patient",
                                               "full_name": "Charles Babbage", "medical_record_number": "MRN-1791"})
    assert page.status_code == 400 and "medical record number already exists" in page.content.decode()
    # A mistyped number that happens to be Ada's, under another name: refused, and Ada's record untouched.
    client.force_login(world.admin_a)
    page = client.post("/h/st-anne/members/", {"email": "bob@st-anne.example", "role": "patient",
                                               "full_name": "Bob Smith", "medical_record_number": "MRN-1815"})
    assert page.status_code == 400 and "holds this medical record number for a patient with other details" in (
        page.content.decode())
    held.refresh_from_db()
    assert held.full_name == "Ada Lovelace" and not Invitation.objects.filter(email="bob@st-anne.example").exists()
    token = invite("ada@st-anne.example", "patient", full_name=" ada  lovelace ", medical_record_number=" MRN-1815 ")
    assert Invitation.objects.get(email="ada@st-anne.example").patient == held
    client.post(f"/invite/{token}/", {"password": "a-long-new-secret-5", "password_again": "a-long-new-secret-5"})
    held.refresh_from_db()
    assert (held.user.email, held.full_name) == ("ada@st-anne.example", "Ada Lovelace")
    assert Patient.objects.filter(hospital=world.a, mrn_digest=held.mrn_digest).count() == 1



def _member_rows(html: str) -> list:
    """The emails of the members table's rows, in order."""
    table = html.split('aria-labelledby="members-title"')[1].split("</table>")[0]
    return re.findall(r'<td data-label="Email">([^<\s]+)', table)


def test_members_page_pages_through_a_long_list(client, world):
    for n in range(MEMBERS_PAGE_SIZE):
        make_member(world.a, Role.PATIENT, f"p{n:03d}@st-anne.example")
    client.force_login(world.admin_a)
    first = client.get("/h/st-anne/members/").content.decode()
    rows = _member_rows(first)
    assert len(rows) == MEMBERS_PAGE_SIZE and rows[0] == "admin@st-anne.example"
    assert f"({MEMBERS_PAGE_SIZE + 5})" in first and 'href="?page=2"' in first
    second = _member_rows(client.get("/h/st-anne/members/?page=2").content.decode())
    assert len(second) == 5 and not set(rows) & set(second)
    assert "patient2@st-anne.example" in rows + second and "north.example" not in "".join(rows + second)


def _show_members(client, **filters):
    """The filter form, posted as the page posts it; the page it redirects to."""
    response = client.post("/h/st-anne/members/", {"filter": "show", "role": "", "email": "", **filters})
    assert response.status_code == 302
    return client.get(response["Location"]).content.decode()


def test_members_page_filters_by_role_and_email_within_the_hospital(client, world):
    client.force_login(world.admin_a)
    doctors = client.get("/h/st-anne/members/", {"role": "doctor"}).content.decode()
    assert _member_rows(doctors) == ["doctor1@st-anne.example", "doctor2@st-anne.example"]
    assert '<option value="doctor" selected>' in doctors
    found = _show_members(client, email=" Patient2@ ")
    assert _member_rows(found) == ["patient2@st-anne.example"] and 'value="Patient2@"' in found
    assert "No member matches." in _show_members(client, email="north.example")
    # A role that does not exist is no filter, rather than an empty list that looks like no members.
    assert len(_member_rows(_show_members(client, role="owner"))) == 5
    # Show everyone clears both filters.
    response = client.post("/h/st-anne/members/", {"filter": "everyone", "role": "doctor", "email": "doctor2"})
    assert response["Location"] == "/h/st-anne/members/"
    assert len(_member_rows(client.get("/h/st-anne/members/").content.decode())) == 5


def test_an_email_filter_with_a_nul_is_refused_and_the_page_still_shows(client, world):
    client.force_login(world.admin_a)
    _show_members(client, email="doctor")
    response = client.post("/h/st-anne/members/", {"filter": "show", "role": "", "email": "a\x00b"}, follow=True)
    assert response.status_code == 200
    assert "An email filter cannot contain a NUL character." in response.content.decode()
    # The filter it refused did not replace the one before.
    assert _member_rows(response.content.decode()) == ["doctor1@st-anne.example", "doctor2@st-anne.example"]


def test_the_email_filter_is_never_put_in_an_address(client, world):
    """What is typed is part of someone's address, often a patient's: access logs, proxies and the
    browser's history keep addresses, so it travels in the form's body and stays in the session."""
    for n in range(MEMBERS_PAGE_SIZE):
        make_member(world.a, Role.PATIENT, f"p{n:03d}@st-anne.example")
    client.force_login(world.admin_a)
    html = client.get("/h/st-anne/members/").content.decode()
    form = re.search(r'<form method="(\w+)"[^>]*aria-label="Filter the members"', html)
    assert form.group(1) == "post"
    response = client.post("/h/st-anne/members/", {"filter": "show", "role": "patient", "email": "st-anne.example"})
    assert response["Location"] == "/h/st-anne/members/?role=patient"
    html = client.get(response["Location"]).content.decode()
    assert f"({MEMBERS_PAGE_SIZE + 2} found)" in html and 'value="st-anne.example"' in html
    assert 'href="?role=patient&amp;page=2"' in html
    addresses = re.findall(r'(?:href|action)="([^"]*)"', html) + re.findall(r'name="listing" value="([^"]*)"', html)
    assert addresses and not [address for address in addresses if "st-anne.example" in address]
    member = Membership.objects.get(user__email="p000@st-anne.example", hospital=world.a)
    back = client.post(f"/h/st-anne/members/{member.pk}/role/", {"role": "doctor", "listing": "role=patient&page=2"})
    assert back["Location"] == "/h/st-anne/members/?role=patient&page=2"
    # Still filtered when the admin comes back; not in another hospital's list.
    assert 'value="st-anne.example"' in client.get("/h/st-anne/members/").content.decode()


def test_a_change_from_a_filtered_list_returns_to_it_and_still_asks_first(client, world):
    client.force_login(world.admin_a)
    html = _show_members(client, role="doctor", email="doctor2")
    member = Membership.objects.get(user=world.doctor_a2, hospital=world.a)
    prompts = _confirm_prompts(html)
    assert "Change the role of doctor2@st-anne.example?" in prompts[f"/h/st-anne/members/{member.pk}/role/"]
    listing = re.search(r'name="listing" value="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert listing == "role=doctor&page=1"
    response = client.post(f"/h/st-anne/members/{member.pk}/role/", {"role": "admin", "listing": listing})
    assert response["Location"] == "/h/st-anne/members/?role=doctor&page=1"
    # Only the list's own keys come back: nothing posted can send the admin elsewhere.
    odd = client.post(f"/h/st-anne/members/{member.pk}/role/",
                      {"role": "doctor", "listing": "next=https://evil.example/&page=x"})
    assert odd["Location"] == "/h/st-anne/members/"
    removed = client.post(f"/h/st-anne/members/{member.pk}/remove/", {"listing": "role=doctor"})
    assert removed["Location"] == "/h/st-anne/members/?role=doctor"
    assert not Membership.objects.filter(pk=member.pk).exists()


# The audit log page (frontend/views/audit.py).

def test_audit_log_is_for_this_hospitals_admins_only(client, world):
    assert client.get("/h/st-anne/audit/")["Location"].startswith("/accounts/login/")
    client.force_login(world.admin_b)
    assert client.get("/h/st-anne/audit/").status_code == 404
    client.force_login(world.doctor_a)
    assert client.get("/h/st-anne/audit/").status_code == 403
    client.force_login(world.patient_a)
    assert client.get("/h/st-anne/audit/").status_code == 403
    client.force_login(world.admin_a)
    page = client.get("/h/st-anne/audit/")
    assert page.status_code == 200
    assert '<a href="/h/st-anne/audit/"' in page.content.decode()
    client.force_login(world.doctor_a)
    assert "/h/st-anne/audit/" not in client.get("/h/st-anne/worklist/").content.decode()


def test_audit_log_shows_who_did_what_without_phi_and_nothing_of_another_hospital(client, world):
    patient = make_patient(world.a, full_name="Marguerite Okonkwo-Vale", medical_record_number="MRN-77821")
    record_audit(actor=world.doctor_a, hospital=world.a, action="patient.read", obj=patient)
    record_audit(actor=None, hospital=world.a, action="scan.diagnose", object_type="scan",
                 object_id="8d3c1a4e-0000-4000-8000-000000000001")
    other = make_patient(world.b, full_name="Bartholomew Other")
    record_audit(actor=world.doctor_b, hospital=world.b, action="patient.read", obj=other)
    client.force_login(world.admin_a)
    html = client.get("/h/st-anne/audit/").content.decode()
    rows = html.split("<tbody>")[1].split("</tbody>")[0]
    assert "Patient record read" in rows and "doctor1@st-anne.example" in rows and str(patient.pk) in rows
    # No such scan (any more): its id is shown, not linked to a page that would answer "not found".
    assert "system" in rows and "8d3c1a4e-0000-4000-8000-000000000001 (removed)" in rows
    assert "/h/st-anne/scans/8d3c1a4e" not in rows
    assert f'href="/h/st-anne/patients/{patient.pk}/"' in rows
    assert "Marguerite" not in html and "MRN-77821" not in html
    assert str(other.pk) not in html and "north.example" not in html
    # Newest first: the analysis was recorded after the read.
    assert rows.index("Scan analysed") < rows.index("Patient record read")


def test_audit_log_names_the_actor_by_name_and_survives_a_deleted_account(client, world):
    world.doctor_a.first_name, world.doctor_a.last_name = "Grace", "Hopper"
    world.doctor_a.save()
    gone = make_user("left@st-anne.example")
    record_audit(actor=world.doctor_a, hospital=world.a, action="scan.view", object_type="scan", object_id="x")
    record_audit(actor=gone, hospital=world.a, action="scan.view", object_type="scan", object_id="y")
    gone.delete()
    client.force_login(world.admin_a)
    rows = client.get("/h/st-anne/audit/?action=scan.view").content.decode().split("<tbody>")[1]
    assert "Grace Hopper" in rows and "left@st-anne.example" in rows


def test_audit_log_tells_a_replaced_invitation_by_its_replacement(client, world):
    from hospitals.services import invite_member

    old, _ = invite_member(hospital=world.a, email="new@st-anne.example", role=Role.DOCTOR, actor=world.admin_a)
    new, _ = invite_member(hospital=world.a, email="new@st-anne.example", role=Role.DOCTOR, actor=world.admin_a)
    client.force_login(world.admin_a)
    html = client.get("/h/st-anne/audit/").content.decode()
    assert '<option value="invitation.replace">Invitation replaced</option>' in html
    row = html.split("<tbody>")[1].split("Invitation replaced")[1].split("</tr>")[0]
    assert f"{old.pk}" in row and f"by invitation {new.pk}" in row


def test_audit_log_filters_by_action_and_pages_through(client, world):
    for n in range(AUDIT_PAGE_SIZE + 5):
        record_audit(actor=world.doctor_a, hospital=world.a, action="scan.view", object_type="scan",
                     object_id=f"scan-{n:03d}")
    record_audit(actor=world.doctor_b, hospital=world.b, action="scan.view", object_type="scan", object_id="b-scan")
    client.force_login(world.admin_a)
    first = client.get("/h/st-anne/audit/?action=scan.view").content.decode()
    assert first.count("Scan opened</td>") == AUDIT_PAGE_SIZE
    assert "Membership" not in first.split("<tbody>")[1] and "Member added" not in first.split("<tbody>")[1]
    assert "scan-054" in first and "scan-004" not in first
    assert 'href="?action=scan.view&amp;page=2"' in first
    second = client.get("/h/st-anne/audit/?action=scan.view&page=2").content.decode()
    assert second.count("Scan opened</td>") == 5 and "scan-000" in second and "b-scan" not in second
    # Without the filter, the members' additions written when the hospital was set up are there too.
    assert "Member added" in client.get("/h/st-anne/audit/?page=2").content.decode().split("<tbody>")[1]
    # The filter offers the actions this hospital's trail holds, in words.
    assert '<option value="scan.view" selected>Scan opened</option>' in first
    assert client.get("/h/st-anne/audit/?action=nothing.such").status_code == 200


def test_a_member_made_patient_on_the_members_page_can_upload_at_once(client, world):
    member = Membership.objects.get(user=world.doctor_a, hospital=world.a)
    client.force_login(world.admin_a)
    page = client.post(f"/h/st-anne/members/{member.pk}/role/", {"role": "patient"}, follow=True).content.decode()
    assert "doctor1@st-anne.example is now patient." in page
    assert "doctor1@st-anne.example has a new patient record, named from their account" in page
    record = patient_of(world.doctor_a, world.a)
    client.force_login(world.doctor_a)
    response = upload(client, world.a, jpeg_bytes("glioma", 0))
    assert response.status_code == 201, response.content
    assert Scan.objects.get(pk=response.json()["id"]).patient == record
    # Staff correct the name the record got from the account on the record page.
    client.force_login(world.admin_a)
    assert client.get(f"/h/st-anne/patients/{record.pk}/").status_code == 200


def _who(html: str) -> list:
    """The audit table's "Who" cells, as HTML."""
    return re.findall(r'<td data-label="Who">(.*?)</td>', html.split("<tbody>")[1])


def _uploaded_scans(client, world, count):
    client.force_login(world.owner)
    scans = []
    for index in range(count):
        response = upload(client, world.a, jpeg_bytes("glioma", index))
        assert response.status_code == 201, response.content
        scans.append(Scan.objects.get(pk=response.json()["id"]))
    return scans


def test_audit_log_links_only_scans_and_records_that_still_exist(client, world):
    kept, removed = _uploaded_scans(client, world, 2)
    admin = Membership.objects.get(user=world.admin_a, hospital=world.a)
    remove_scan(hospital=world.a, scan=removed, membership=admin, reason="uploaded for the wrong patient")
    gone_patient = make_patient(world.a, "Tobias Wrenfield")
    record_audit(actor=world.doctor_a, hospital=world.a, action="patient.read", obj=gone_patient)
    gone_patient_id = gone_patient.pk
    gone_patient.delete()
    # B's scan, named in A's trail, is not A's to link.
    theirs = Scan.objects.create(hospital=world.b, patient=patient_of(world.patient_b, world.b), blob_path="x",
                                 blob_sha256="0" * 64, blob_size=1, content_digest="b", kind="jpeg", width=1, height=1)
    record_audit(actor=world.doctor_a, hospital=world.a, action="scan.view", obj=theirs)
    client.force_login(world.admin_a)
    rows = client.get("/h/st-anne/audit/").content.decode().split("<tbody>")[1]
    assert f'<a href="/h/st-anne/scans/{kept.pk}/">{kept.pk}</a>' in rows
    assert f"/scans/{removed.pk}/" not in rows and f"{removed.pk} (removed)" in rows
    assert f"/patients/{gone_patient_id}/" not in rows and f"{gone_patient_id} (removed)" in rows
    assert f"/scans/{theirs.pk}/" not in rows and f"{theirs.pk} (removed)" in rows


def test_audit_log_looks_objects_up_once_per_type_not_once_per_row(client, world):
    def queries_for_page():
        client.force_login(world.admin_a)
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/h/st-anne/audit/").status_code == 200
        return len(captured)

    def record_events(n):
        for _ in range(n):
            patient = make_patient(world.a)
            record_audit(actor=world.doctor_a, hospital=world.a, action="patient.read", obj=patient)
            record_audit(actor=world.doctor_a, hospital=world.a, action="scan.view", object_type="scan",
                         object_id=str(patient.pk))

    record_events(2)
    few = queries_for_page()
    record_events(10)
    assert queries_for_page() == few


def test_audit_log_names_a_patient_by_their_record_and_staff_by_name(client, world):
    world.patient_a.first_name, world.patient_a.last_name = "Clementine", "Ashdown"
    world.patient_a.save()
    world.doctor_a.first_name, world.doctor_a.last_name = "Grace", "Hopper"
    world.doctor_a.save()
    _uploaded_scans(client, world, 1)
    record = patient_of(world.patient_a, world.a)
    record_audit(actor=world.doctor_a, hospital=world.a, action="patient.read", obj=record)
    # A doctor who was a patient here once keeps their record but is staff: named as staff.
    world.doctor_a2.first_name, world.doctor_a2.last_name = "Ada", "Byron"
    world.doctor_a2.save()
    make_patient(world.a, "Ada Byron", user=world.doctor_a2)
    record_audit(actor=world.doctor_a2, hospital=world.a, action="scan.view", object_type="scan", object_id="x")
    # A patient who has left the hospital is still a patient in its log.
    record_audit(actor=world.patient_a2, hospital=world.a, action="scan.view", object_type="scan", object_id="y")
    left = patient_of(world.patient_a2, world.a)
    Membership.objects.filter(user=world.patient_a2, hospital=world.a).delete()
    client.force_login(world.admin_a)
    html = client.get("/h/st-anne/audit/").content.decode()
    who = _who(html)
    assert f'<a href="/h/st-anne/patients/{record.pk}/">Patient {str(record.pk)[:8]}…</a>' in who
    assert f'<a href="/h/st-anne/patients/{left.pk}/">Patient {str(left.pk)[:8]}…</a>' in who
    assert "Grace Hopper" in who and "Ada Byron" in who
    cells = "".join(who)
    assert "Clementine" not in cells and "patient1@st-anne.example" not in cells
    assert "patient2@st-anne.example" not in cells
    assert "never by their name" in html and "never shows a patient&#x27;s details" not in html


def test_audit_export_names_a_patient_by_record_not_by_email(client, world):
    _uploaded_scans(client, world, 1)
    client.force_login(world.admin_a)
    export = b"".join(client.get("/h/st-anne/audit/export.csv").streaming_content).decode()
    record = Patient.objects.get(hospital=world.a, user=world.owner)
    assert f"{world.owner.pk},patient {record.pk},scan.upload" in export
    assert "patient1@st-anne.example" not in export


def test_reinviting_tells_the_admin_the_earlier_link_no_longer_works(client, world, invite):
    old_token = invite("twice@st-anne.example")
    first = Invitation.objects.get(email="twice@st-anne.example")
    client.force_login(world.admin_a)
    page = client.post("/h/st-anne/members/", {"email": "twice@st-anne.example", "role": "doctor"},
                       follow=True).content.decode()
    sent = timezone.localtime(first.created_at)
    assert (f"Invitation sent to twice@st-anne.example. It replaces the invitation sent on "
            f"{sent.day} {sent:%b %Y, %H:%M} UTC: the link in that earlier email no longer works.") in page
    # A first invitation replaces nothing, and says nothing about it.
    page = client.post("/h/st-anne/members/", {"email": "once@st-anne.example", "role": "doctor"},
                       follow=True).content.decode()
    assert "Invitation sent to once@st-anne.example." in page and "replaces" not in page
    client.logout()
    old = client.get(f"/invite/{old_token}/")
    notice = re.search(r'<div class="notice error" role="alert"[^>]*>(.*?)</div>', old.content.decode()).group(1)
    assert old.status_code == 404 and notice.startswith("This invitation link no longer works")
    assert "token" not in notice.lower()


def test_reinviting_a_patient_says_so_too(client, world):
    client.force_login(world.admin_a)
    details = {"email": "pat@st-anne.example", "role": "patient", "full_name": "Alan Turing"}
    assert "replaces" not in client.post("/h/st-anne/members/", details, follow=True).content.decode()
    assert "the link in that earlier email no longer works" in client.post(
        "/h/st-anne/members/", details, follow=True).content.decode()


def test_invitation_for_another_address_says_so_before_any_click(client, world, invite):
    token = invite("newdoc@st-anne.example")
    client.force_login(world.patient_a)
    page = client.get(f"/invite/{token}/", follow=True)
    html = page.content.decode()
    assert page.status_code == 200
    assert ("You are signed in as patient1@st-anne.example, but this invitation is for newdoc@st-anne.example"
            in html)
    assert "Accepting adds this account" not in html and "Accept invitation</button>" not in html
    assert f'<input type="hidden" name="next" value="/invite/#{token}">' in html
    # Signing out there comes back to the invitation, now signed out, with the form to accept.
    signed_out = client.post("/accounts/logout/", {"next": f"/invite/#{token}"})
    assert signed_out["Location"] == f"/invite/#{token}"
    assert "Accept invitation</button>" in client.post("/invite/", {"link": token}, follow=True).content.decode()
    # The server still refuses a wrong account's acceptance, whatever the page showed.
    client.force_login(world.patient_a)
    refused = client.post(f"/invite/{token}/", {})
    assert "This invitation is for another email address" in refused.content.decode()
    assert not Membership.objects.filter(user__email="newdoc@st-anne.example").exists()


def test_invitation_for_the_signed_in_address_offers_to_accept(client, world, invite):
    token = invite("Doctor@North.example")
    client.force_login(world.doctor_b)
    html = client.get(f"/invite/{token}/", follow=True).content.decode()
    assert "Accepting adds this account" in html and 'id="wrong-account"' not in html


def test_an_admin_who_removes_themselves_is_sent_home_not_to_a_page_now_closed_to_them(client, world):
    from hospitals.models import Membership, Role
    from hospitals.services import change_role

    other = Membership.objects.get(hospital=world.a, user=world.doctor_a2)
    change_role(hospital=world.a, membership=other, role=Role.ADMIN, actor=world.admin_a)
    mine = Membership.objects.get(hospital=world.a, user=world.admin_a)
    client.force_login(world.admin_a)
    response = client.post(f"/h/st-anne/members/{mine.pk}/remove/")
    assert not Membership.objects.filter(pk=mine.pk).exists()
    assert response.status_code == 302 and response["Location"] == "/"
