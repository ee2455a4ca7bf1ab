from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.utils import timezone

from hospitals.models import AuditEvent, Invitation, Membership, Patient, Role
from hospitals.errors import DomainError
from hospitals.services import invite_member
from tests.factories import PASSWORD, make_user
from tests.hospitals.conftest import url

pytestmark = pytest.mark.django_db

ACCEPT = url("invitations", "accept")
NEW_PASSWORD = "lantern-orchard-57"


def invite(world, email="new.person@example.org", role=Role.DOCTOR, **kwargs):
    return invite_member(hospital=world.a, email=email, role=role, actor=world.admin_a, **kwargs)


@pytest.mark.parametrize(
    "who, status",
    [("admin_a", 200), ("doctor_a", 403), ("owner", 403), ("outsider", 404), ("admin_b", 404), ("anonymous", 401)],
)
def test_list_invitations(world, client_as, who, status):
    invite(world)
    invite_member(hospital=world.b, email="b@example.org", role=Role.DOCTOR, actor=world.admin_b)
    response = client_as(who).get(url("hospitals", world.a.slug, "invitations"))
    assert response.status_code == status, response.content
    if status == 200:
        assert [i["email"] for i in response.json()["results"]] == ["new.person@example.org"]


@pytest.mark.parametrize(
    "who, status",
    [("admin_a", 201), ("doctor_a", 403), ("owner", 403), ("outsider", 404), ("anonymous", 401)],
)
def test_create_invitation(world, client_as, who, status):
    response = client_as(who).post(
        url("hospitals", world.a.slug, "invitations"), {"email": "nurse@example.org", "role": "doctor"}
    )
    assert response.status_code == status, response.content
    assert Invitation.objects.filter(hospital=world.a).count() == (1 if status == 201 else 0)


@pytest.mark.parametrize(
    "who, status",
    [("admin_a", 204), ("doctor_a", 403), ("owner", 403), ("outsider", 404), ("admin_b", 404), ("anonymous", 401)],
)
def test_revoke_invitation(world, client_as, who, status):
    invitation, token = invite(world)
    response = client_as(who).delete(url("hospitals", world.a.slug, "invitations", invitation.id))
    assert response.status_code == status, response.content
    assert Invitation.objects.filter(pk=invitation.pk).exists() == (status != 204)
    if status == 204:
        assert api_accept(token, NEW_PASSWORD).json()["error"] == "invalid_token"


def test_read_invitation_hides_other_hospitals(world, client_as):
    theirs, _ = invite_member(hospital=world.b, email="b@example.org", role=Role.DOCTOR, actor=world.admin_b)
    responses = [client_as("admin_a").get(url("hospitals", world.a.slug, "invitations", i)) for i in (theirs.id, 424242)]
    assert {r.status_code for r in responses} == {404} and len({r.content for r in responses}) == 1


def api_accept(token, password=None, client=None):
    from rest_framework.test import APIClient

    payload = {"token": token} if password is None else {"token": token, "password": password}
    return (client or APIClient()).post(ACCEPT, payload, format="json")


def test_accept_creates_the_account_and_the_membership(world):
    _, token = invite(world)
    response = api_accept(token, NEW_PASSWORD)
    assert response.status_code == 201, response.content
    assert response.json() == {
        "hospital": world.a.slug, "role": "doctor", "email": "new.person@example.org", "account_created": True,
    }
    user = get_user_model().objects.get(email="new.person@example.org")
    assert user.password.startswith("argon2$") and check_password(NEW_PASSWORD, user.password)
    assert Membership.objects.get(user=user, hospital=world.a).role == Role.DOCTOR
    assert AuditEvent.objects.filter(action="invitation.accept", actor_id=user.pk).exists()


def test_accept_with_an_existing_account_needs_no_password(world):
    _, token = invite_member(hospital=world.a, email="Doctor@North.example", role=Role.DOCTOR, actor=world.admin_a)
    response = api_accept(token)
    assert response.status_code == 200, response.content
    assert response.json()["account_created"] is False
    assert Membership.objects.get(user=world.doctor_b, hospital=world.a).role == Role.DOCTOR
    assert check_password(PASSWORD, get_user_model().objects.get(pk=world.doctor_b.pk).password)


def test_accept_links_the_named_patient_record(world):
    from tests.factories import make_patient

    record = make_patient(world.a, full_name="Tobias Wrenfield")
    _, token = invite(world, email="tobias@example.org", role=Role.PATIENT, patient=record)
    assert api_accept(token, NEW_PASSWORD).status_code == 201
    record.refresh_from_db()
    assert record.user.email == "tobias@example.org"


def test_signed_in_user_cannot_accept_someone_elses_invitation(world, api):
    _, token = invite(world)
    response = api_accept(token, client=api(world.doctor_b))
    assert response.status_code == 400 and response.json()["error"] == "wrong_account"
    assert not Membership.objects.filter(user=world.doctor_b, hospital=world.a).exists()


@pytest.mark.parametrize(
    "case, code",
    [
        ("unknown", "invalid_token"),
        ("expired", "invitation_expired"),
        ("used", "invitation_used"),
        ("no_password", "password_required"),
        ("weak_password", "weak_password"),
    ],
)
def test_accept_refusals_are_clear(world, case, code):
    invitation, token = invite(world)
    password = NEW_PASSWORD
    if case == "unknown":
        token = "not-a-real-token"
    elif case == "expired":
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif case == "used":
        assert api_accept(token, password).status_code == 201
    elif case == "no_password":
        password = None
    elif case == "weak_password":
        password = "12345678"
    users_before = get_user_model().objects.count()
    response = api_accept(token, password)
    assert response.status_code == (409 if case == "used" else 400)  # 409 as revoking a used one answers
    body = response.json()
    assert body["error"] == code and body["detail"]
    assert get_user_model().objects.count() == users_before


def test_a_new_invitation_replaces_the_pending_one(world):
    _, old_token = invite(world)
    _, new_token = invite(world, role=Role.ADMIN)
    assert api_accept(old_token, NEW_PASSWORD).json()["error"] == "invalid_token"
    assert api_accept(new_token, NEW_PASSWORD).json()["role"] == "admin"


def test_a_replaced_invitation_leaves_its_own_audit_event(world):
    """A replaced invitation is deleted as a revoked one is: the trail says which one went, and what
    replaced it (its own creation event says when it was sent)."""
    old, _ = invite(world)
    new, _ = invite(world, role=Role.ADMIN)

    [replaced] = AuditEvent.objects.filter(hospital_id=world.a.pk, action="invitation.replace")
    assert (replaced.object_type, replaced.object_id) == ("invitation", str(old.pk))
    assert replaced.detail == f"by invitation {new.pk}" and replaced.actor_id == world.admin_a.pk
    assert AuditEvent.objects.filter(action="invitation.create", object_id=str(old.pk)).exists()
    assert not AuditEvent.objects.filter(action="invitation.replace", object_id=str(new.pk)).exists()


def test_only_a_digest_of_the_token_is_stored(world):
    invitation, token = invite(world)
    stored = Invitation.objects.filter(pk=invitation.pk).values_list("token_digest", flat=True).get()
    assert token not in stored and len(stored) == 64


def test_accept_missing_token_is_a_field_error(db):
    response = api_accept("")
    assert response.status_code == 400 and response.json()["error"] == "invalid"


def test_member_of_one_hospital_joins_another_without_losing_the_first(world):
    user = make_user("traveller@example.org")
    _, token_b = invite_member(hospital=world.b, email=user.email, role=Role.PATIENT, actor=world.admin_b)
    _, token_a = invite(world, email=user.email)
    assert api_accept(token_b).status_code == 200
    assert api_accept(token_a).status_code == 200
    roles = dict(Membership.objects.filter(user=user).values_list("hospital__slug", "role"))
    assert roles == {world.a.slug: "doctor", world.b.slug: "patient"}
    assert not Patient.objects.filter(user=user).exists()  # no record was named, none is invented


def test_invitation_cannot_name_another_hospitals_patient(world, client_as):
    theirs = Patient.objects.get(user=world.patient_b)
    response = client_as("admin_a").post(
        url("hospitals", world.a.slug, "invitations"), {"email": "p@example.org", "role": "patient", "patient": str(theirs.id)}
    )
    assert response.status_code == 404 and response.json()["detail"] == "No such patient"
    assert not Invitation.objects.exists()


def test_only_a_patient_invitation_names_a_record(world, client_as):
    from tests.factories import make_patient

    record = make_patient(world.a)
    response = client_as("admin_a").post(
        url("hospitals", world.a.slug, "invitations"), {"email": "p@example.org", "role": "doctor", "patient": str(record.id)}
    )
    assert response.status_code == 400 and response.json()["error"] == "patient_needs_patient_role"


def test_a_failing_mail_server_does_not_lose_the_invitation(world, client_as, unreachable_mail_relay,
                                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as("admin_a").post(
            url("hospitals", world.a.slug, "invitations"), {"email": "late@example.org", "role": "doctor"}
        )
    assert response.status_code == 201
    assert Invitation.objects.get(email="late@example.org").status == "pending"


@pytest.mark.django_db(transaction=True)
def test_the_answer_says_the_mail_left(world, client_as):
    created = client_as("admin_a").post(url("hospitals", world.a.slug, "invitations"),
                                        {"email": "sent@example.org", "role": "doctor"})
    assert created.status_code == 201 and created.json()["mail_sent"] is True
    # A listed invitation has no such field: whether a mail left is known only as it is sent.
    listed = client_as("admin_a").get(url("hospitals", world.a.slug, "invitations")).json()["results"]
    assert listed and all("mail_sent" not in invitation for invitation in listed)


@pytest.mark.django_db(transaction=True)
def test_the_answer_says_the_relay_did_not_take_the_mail(world, client_as, unreachable_mail_relay):
    # An API client (an admin's script) must not tell the invitee to look for a mail the relay refused.
    refused = client_as("admin_a").post(url("hospitals", world.a.slug, "members"),
                                        {"email": "late@example.org", "role": "doctor"})
    assert refused.status_code == 201 and refused.json()["mail_sent"] is False
    assert Invitation.objects.get(email="late@example.org").status == "pending"


def test_the_emailed_token_accepts_the_invitation(world, client_as, django_capture_on_commit_callbacks):
    import re

    from django.core import mail

    with django_capture_on_commit_callbacks(execute=True):
        client_as("admin_a").post(url("hospitals", world.a.slug, "members"), {"email": "mail@example.org", "role": "doctor"})
    body = mail.outbox[0].body
    # The page's link carries the token after "#", which no request sends: it reaches no access log.
    token = re.search(r"http://testserver/invite/#(\S+)", body).group(1)
    assert body.count(token) == 2  # the page link and the API instructions carry the same token
    assert api_accept(token, NEW_PASSWORD).status_code == 201


def test_a_removed_patient_is_invited_back_only_with_the_record_their_account_holds(world, client_as):
    """An account holds one patient record per hospital: an invitation naming another could never be accepted."""
    from hospitals.services import remove_member
    from tests.factories import make_patient

    own = Patient.objects.get(user=world.patient_a, hospital=world.a)
    remove_member(hospital=world.a, membership=Membership.objects.get(user=world.patient_a, hospital=world.a),
                  actor=world.admin_a)
    other = make_patient(world.a, full_name="Someone Else")
    invitations = url("hospitals", world.a.slug, "invitations")
    refused = client_as("admin_a").post(invitations, {"email": world.patient_a.email, "role": "patient",
                                                      "patient": str(other.id)})
    assert refused.status_code == 409 and refused.json()["error"] == "patient_has_other_record"
    assert str(own.pk) in refused.json()["detail"] and not Invitation.objects.exists()
    accepted = client_as("admin_a").post(invitations, {"email": world.patient_a.email, "role": "patient",
                                                       "patient": str(own.id)})
    assert accepted.status_code == 201, accepted.content


def test_an_invitation_whose_invitee_got_another_record_since_is_refused_clearly(world):
    from tests.factories import make_patient

    account = make_user("returning@example.org")
    named = make_patient(world.a, full_name="Named Record")
    _, token = invite(world, email=account.email, role=Role.PATIENT, patient=named)
    make_patient(world.a, full_name="Linked Since", user=account)
    refused = api_accept(token)
    assert refused.status_code == 409 and refused.json()["error"] == "patient_has_other_record"
    assert "Ask the hospital to invite you again" in refused.json()["detail"]
    assert not Membership.objects.filter(user=account, hospital=world.a).exists()
    named.refresh_from_db()
    assert named.user is None


def test_an_address_longer_than_mail_allows_is_refused_clearly(world, client_as):
    too_long = "a" * 60 + "." + "b" * 60 + "@" + "c" * 63 + "." + "d" * 63 + ".example.org"  # valid, 258 characters
    response = client_as("admin_a").post(url("hospitals", world.a.slug, "invitations"),
                                         {"email": too_long, "role": "doctor"})
    assert response.status_code == 400 and "email" in response.json()["fields"]
    with pytest.raises(DomainError) as refused:
        invite(world, email=too_long)
    assert refused.value.code == "invalid_email" and "254 characters" in refused.value.detail
    assert not Invitation.objects.exists()
