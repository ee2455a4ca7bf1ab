"""Patient invitations and the records they name: one record, one address; a record the hospital held
before is never rewritten from an invitation; an invited patient always has a record to upload to."""

import threading
import time
from datetime import date

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from hospitals.errors import DomainError
from hospitals.models import Invitation, Membership, Role
from hospitals.services import change_role, invite_member, invite_patient
from tests.factories import make_patient

pytestmark = pytest.mark.django_db

PASSWORD = "lantern-orchard-57"


def accept(token):
    return APIClient().post("/api/v1/invitations/accept/", {"token": token, "password": PASSWORD}, format="json")


@pytest.mark.parametrize("resent", [
    {"full_name": "Ada Lovelace"},  # the mail bounced; sent again with the name only
    {"full_name": "Bob Smith", "medical_record_number": "MRN-2001"},  # a family address, another person
])
def test_sending_again_does_not_rewrite_a_record_the_hospital_held_before(world, resent):
    held = make_patient(world.a, "Ada Lovelace", medical_record_number="MRN-1815", date_of_birth=date(1915, 12, 10))
    invite_patient(hospital=world.a, email="family@st-anne.example", full_name="Ada Lovelace",
                   date_of_birth=date(1915, 12, 10), medical_record_number="MRN-1815", actor=world.admin_a)
    assert Invitation.objects.get(email="family@st-anne.example").patient == held
    try:
        invite_patient(hospital=world.a, email="family@st-anne.example", actor=world.admin_a, **resent)
    except DomainError as refused:
        assert "Bob Smith" in resent["full_name"] and refused.code == "record_mismatch"
    else:
        assert resent == {"full_name": "Ada Lovelace"}
        assert Invitation.objects.get(email="family@st-anne.example", accepted_at__isnull=True).patient == held
    held.refresh_from_db()
    assert (held.full_name, held.medical_record_number, held.date_of_birth) == (
        "Ada Lovelace", "MRN-1815", date(1915, 12, 10))


def test_sending_again_corrects_a_record_the_invitation_made(world):
    invite_patient(hospital=world.a, email="new@st-anne.example", full_name="Ada Lovlace", actor=world.admin_a)
    made = Invitation.objects.get(email="new@st-anne.example").patient
    invite_patient(hospital=world.a, email="new@st-anne.example", full_name="Ada Lovelace",
                   medical_record_number="MRN-9", actor=world.admin_a)
    pending = Invitation.objects.get(email="new@st-anne.example", accepted_at__isnull=True)
    made.refresh_from_db()
    assert pending.patient == made and pending.made_the_record
    assert (made.full_name, made.medical_record_number) == ("Ada Lovelace", "MRN-9")


def test_one_record_is_invited_to_one_address_at_a_time(world, client_as):
    record = make_patient(world.a, "Tobias Wrenfield")
    admin = client_as("admin_a")
    first = admin.post("/api/v1/hospitals/st-anne/invitations/",
                       {"email": "tobias@example.org", "role": "patient", "patient": str(record.pk)}, format="json")
    assert first.status_code == 201
    second = admin.post("/api/v1/hospitals/st-anne/invitations/",
                        {"email": "someone.else@example.org", "role": "patient", "patient": str(record.pk)},
                        format="json")
    assert second.status_code == 409 and second.json()["error"] == "patient_invited_elsewhere"
    # Sent again to the same address, it replaces its own invitation.
    again = admin.post("/api/v1/hospitals/st-anne/invitations/",
                       {"email": "tobias@example.org", "role": "patient", "patient": str(record.pk)}, format="json")
    assert again.status_code == 201


def test_a_removed_patient_who_had_no_record_is_still_not_named_by_email_in_the_audit_log(world, client):
    """The API may invite a patient without naming a record; once removed, such an account has neither a
    role nor a record here, and was shown on the audit page by its email, a patient detail."""
    _, token = invite_member(hospital=world.a, email="quiet.patient@example.org", role=Role.PATIENT,
                             actor=world.admin_a)
    assert accept(token).status_code == 201
    member = Membership.objects.get(hospital=world.a, user__email="quiet.patient@example.org")
    client.force_login(world.admin_a)
    # Followed, so that the removal's message (which names them to the admin) is shown and gone.
    assert client.post(f"/h/st-anne/members/{member.pk}/remove/", follow=True).status_code == 200
    html = client.get("/h/st-anne/audit/").content.decode()
    assert "quiet.patient@example.org" not in html and f"Patient (account {member.user_id})" in html


@pytest.mark.django_db(transaction=True)
def test_two_admins_inviting_one_address_at_once_leave_one_usable_invitation(world):
    second_admin = Membership.objects.get(hospital=world.a, user=world.doctor_a)
    change_role(hospital=world.a, membership=second_admin, role=Role.ADMIN, actor=world.admin_a)
    first_in_flight, second_done = threading.Event(), threading.Event()

    def first():
        try:
            with transaction.atomic():
                invite_member(hospital=world.a, email="x@example.org", role=Role.DOCTOR, actor=world.admin_a)
                first_in_flight.set()
                second_done.wait(timeout=3)  # the second waits for this transaction's lock meanwhile
        finally:
            connection.close()

    def second():
        try:
            first_in_flight.wait(timeout=10)
            invite_member(hospital=world.a, email="x@example.org", role=Role.ADMIN, actor=world.doctor_a)
        finally:
            second_done.set()
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    pending = Invitation.objects.filter(hospital=world.a, email="x@example.org", accepted_at__isnull=True)
    assert list(pending.values_list("role", flat=True)) == ["admin"]  # the later one replaced the first


def _at_once(accept, resend):
    """Run both in their own transactions; what each raised, by name."""
    raised = {}

    def run(name, work):
        def go():
            try:
                work()
            except Exception as error:  # noqa: BLE001 - reported to the test
                raised[name] = error
            finally:
                connection.close()
        return go

    threads = [threading.Thread(target=run("accept", accept)), threading.Thread(target=run("resend", resend))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return raised


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("resend_by", ["invite_member", "invite_patient"])
def test_an_invitation_sent_again_while_it_is_accepted_is_refused_in_words_not_deadlocked(world, monkeypatch,
                                                                                           resend_by):
    from hospitals import services

    if resend_by == "invite_member":
        _, token = invite_member(hospital=world.a, email="x@example.org", role=Role.DOCTOR, actor=world.admin_a)
        resend = lambda: invite_member(hospital=world.a, email="x@example.org", role=Role.DOCTOR,  # noqa: E731
                                       actor=world.admin_a)
    else:
        _, token = invite_patient(hospital=world.a, email="x@example.org", full_name="Ada Lovlace",
                                  actor=world.admin_a)
        resend = lambda: invite_patient(hospital=world.a, email="x@example.org",  # noqa: E731
                                        full_name="Ada Lovelace", actor=world.admin_a)
    accepting = threading.Event()
    add_member = services.add_member

    def slow_add_member(**fields):
        accepting.set()  # the invitation is locked by now; the admin sends it again meanwhile
        time.sleep(0.5)
        return add_member(**fields)

    monkeypatch.setattr(services, "add_member", slow_add_member)

    def resend_meanwhile():
        accepting.wait(10)
        resend()

    raised = _at_once(lambda: accept(token), resend_meanwhile)
    assert "accept" not in raised
    # The acceptance went first; sending again then finds a member, and says so.
    assert isinstance(raised.get("resend"), DomainError) and raised["resend"].code == "already_member"
    assert Membership.objects.filter(hospital=world.a, user__email="x@example.org").exists()


def test_an_invitations_own_record_is_not_rewritten_once_a_scan_is_filed_under_it(world):
    from diagnostics import services as diagnostics_services
    from tests.diagnostics import samples

    invite_patient(hospital=world.a, email="family@st-anne.example", full_name="Ada Lovelace",
                   medical_record_number="MRN-1815", actor=world.admin_a)
    record = Invitation.objects.get(email="family@st-anne.example").patient
    diagnostics_services.upload_scan(hospital=world.a, patient=record, data=samples.jpeg_bytes("glioma", 3),
                                     uploaded_by=world.doctor_a)
    with pytest.raises(DomainError) as refused:
        invite_patient(hospital=world.a, email="family@st-anne.example", full_name="Bob Smith", actor=world.admin_a)
    record.refresh_from_db()
    assert refused.value.code == "record_mismatch" and "correct the record on its patient page" in refused.value.detail
    assert (record.full_name, record.medical_record_number) == ("Ada Lovelace", "MRN-1815")
