"""A patient removed from a hospital and invited back on the Members page gets their own record again.

Their account still holds the record (the hospital keeps it), and one account has one record per
hospital: before, the invitation made a second record and accepting it failed with a server error, or,
with the record number, the invitation was refused as a duplicate of the patient's own record.
"""

import pytest

from hospitals import services
from hospitals.access import access_patient
from hospitals.models import Invitation, Membership, Patient, Role

pytestmark = pytest.mark.django_db


def _remove_and_invite_back(client, world, **details):
    patient = world.patient_a
    record = Patient.objects.get(hospital=world.a, user=patient)
    services.update_patient(hospital=world.a, patient=record, actor=world.admin_a, full_name="Grace Hopper",
                            medical_record_number="MRN-1906")
    client.force_login(world.admin_a)
    member = Membership.objects.get(user=patient, hospital=world.a)
    assert client.post(f"/h/st-anne/members/{member.pk}/remove/").status_code == 302
    # The address as a person types it, in another case.
    page = client.post("/h/st-anne/members/", {"email": "Patient1@St-Anne.example", "role": "patient",
                                               "full_name": "Grace Hopper", **details})
    return record, page


@pytest.mark.parametrize("details", [{}, {"medical_record_number": "MRN-1906"}], ids=["no number", "their number"])
def test_a_removed_patient_invited_back_gets_their_own_record(client, world, details):
    record, page = _remove_and_invite_back(client, world, **details)
    assert page.status_code == 302, page.content.decode()
    invitation = Invitation.objects.get(email="patient1@st-anne.example", accepted_at=None)
    assert invitation.patient == record
    assert Patient.objects.filter(hospital=world.a).count() == 2  # no second record for the same person

    _invitation, token = services.invite_patient(  # the emailed token, as a person would get it
        hospital=world.a, email="patient1@st-anne.example", full_name="Grace Hopper", actor=world.admin_a, **details)
    services.accept_invitation(token=token, user=world.patient_a)

    membership = Membership.objects.get(user=world.patient_a, hospital=world.a)
    assert membership.role == Role.PATIENT
    # The owner reads their record again; their former teammate patient's record stays closed to them.
    assert access_patient(world.patient_a, world.a, record.pk, membership=membership) == record
    other = Patient.objects.get(hospital=world.a, user=world.patient_a2)
    with pytest.raises(Exception) as closed:
        access_patient(world.patient_a, world.a, other.pk, membership=membership)
    assert closed.typename == "Http404"
    record.refresh_from_db()
    assert (record.user, record.full_name) == (world.patient_a, "Grace Hopper")


@pytest.mark.parametrize("details", [{"full_name": "Grace Brewster"}, {"medical_record_number": "MRN-1907"}],
                         ids=["another name", "another number"])
def test_a_removed_patient_invited_back_under_other_details_is_refused_and_their_record_kept(client, world, details):
    record, page = _remove_and_invite_back(client, world, **details)
    assert page.status_code == 400
    assert "already has a patient record here" in page.content.decode()
    record.refresh_from_db()
    assert (record.full_name, record.medical_record_number) == ("Grace Hopper", "MRN-1906")
    assert not Invitation.objects.filter(email="patient1@st-anne.example", accepted_at=None).exists()
    assert Patient.objects.filter(hospital=world.a).count() == 2


def test_a_patient_still_a_member_invited_again_is_told_so(client, world):
    client.force_login(world.admin_a)
    page = client.post("/h/st-anne/members/", {"email": "patient1@st-anne.example", "role": "patient",
                                               "full_name": "Someone Else"})
    assert page.status_code == 400 and "already belongs to a member" in page.content.decode()
