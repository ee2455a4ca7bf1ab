import pytest
from django.core import mail

from hospitals.models import AuditEvent, Invitation, Membership, Role
from tests.hospitals.conftest import url

pytestmark = pytest.mark.django_db


def membership(user, hospital):
    return Membership.objects.get(user=user, hospital=hospital)


@pytest.mark.parametrize(
    "who, status",
    [("admin_a", 200), ("doctor_a", 403), ("owner", 403), ("outsider", 404), ("admin_b", 404), ("anonymous", 401)],
)
def test_list_members(world, client_as, who, status):
    response = client_as(who).get(url("hospitals", world.a.slug, "members"))
    assert response.status_code == status, response.content
    if status == 200:
        emails = {m["user"]["email"]: m["role"] for m in response.json()["results"]}
        assert emails == {
            "admin@st-anne.example": "admin", "doctor1@st-anne.example": "doctor", "doctor2@st-anne.example": "doctor",
            "patient1@st-anne.example": "patient", "patient2@st-anne.example": "patient",
        }


@pytest.mark.parametrize(
    "who, status",
    [("admin_a", 201), ("doctor_a", 403), ("owner", 403), ("outsider", 404), ("anonymous", 401)],
)
def test_invite_member(world, client_as, who, status, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(who).post(
            url("hospitals", world.a.slug, "members"), {"email": "New.Doctor@St-Anne.example", "role": "doctor"}
        )
    assert response.status_code == status, response.content
    if status == 201:
        invitation = Invitation.objects.get(hospital=world.a)
        assert response.json()["email"] == "new.doctor@st-anne.example" == invitation.email
        assert response.json()["status"] == "pending"
        assert "token" not in response.json()  # the token goes only to the invited address
        assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new.doctor@st-anne.example"]
        assert "St Anne's" in mail.outbox[0].subject and "http://testserver/" in mail.outbox[0].body
    else:
        assert not Invitation.objects.exists() and not mail.outbox


def test_inviting_a_member_again_is_refused(world, client_as):
    response = client_as("admin_a").post(
        url("hospitals", world.a.slug, "members"), {"email": "doctor1@st-anne.example", "role": "admin"}
    )
    assert response.status_code == 409 and response.json()["error"] == "already_member"


@pytest.mark.parametrize(
    "who, status",
    [("admin_a", 200), ("doctor_a2", 403), ("owner", 403), ("outsider", 404), ("admin_b", 404), ("anonymous", 401)],
)
def test_read_member(world, client_as, who, status):
    target = membership(world.doctor_a, world.a)
    response = client_as(who).get(url("hospitals", world.a.slug, "members", target.id))
    assert response.status_code == status, response.content


@pytest.mark.parametrize(
    "who, status",
    [("admin_a", 200), ("doctor_a2", 403), ("owner", 403), ("outsider", 404), ("admin_b", 404), ("anonymous", 401)],
)
def test_change_role(world, client_as, who, status):
    target = membership(world.doctor_a, world.a)
    response = client_as(who).patch(url("hospitals", world.a.slug, "members", target.id), {"role": "admin"})
    assert response.status_code == status, response.content
    target.refresh_from_db()
    assert target.role == (Role.ADMIN if status == 200 else Role.DOCTOR)
    if status == 200:
        event = AuditEvent.objects.get(action="membership.role_change")
        assert event.detail == "doctor -> admin" and event.actor_id == world.admin_a.pk


def test_a_member_made_patient_gets_a_patient_record_to_upload_to(world):
    from hospitals.models import Patient
    from hospitals.services import change_role

    world.doctor_a.first_name, world.doctor_a.last_name = "Grace", "Hopper"
    world.doctor_a.save()
    change_role(hospital=world.a, membership=membership(world.doctor_a, world.a), role=Role.PATIENT,
                actor=world.admin_a)
    record = Patient.objects.get(hospital=world.a, user=world.doctor_a)
    assert record.full_name == "Grace Hopper"
    created = AuditEvent.objects.get(action="patient.create", object_id=str(record.pk))
    assert created.actor_id == world.admin_a.pk and created.hospital_id == world.a.pk
    # An account without a name is named by its email, for staff to correct on the record.
    change_role(hospital=world.a, membership=membership(world.doctor_a2, world.a), role=Role.PATIENT,
                actor=world.admin_a)
    assert Patient.objects.get(hospital=world.a, user=world.doctor_a2).full_name == "doctor2@st-anne.example"
    # Only in this hospital: B holds no record for A's new patients.
    assert not Patient.objects.filter(hospital=world.b, user__in=[world.doctor_a, world.doctor_a2]).exists()


def test_a_member_made_patient_again_keeps_the_record_they_have(world):
    from hospitals.models import Patient
    from hospitals.services import change_role, update_patient

    change_role(hospital=world.a, membership=membership(world.doctor_a, world.a), role=Role.PATIENT,
                actor=world.admin_a)
    record = Patient.objects.get(hospital=world.a, user=world.doctor_a)
    update_patient(hospital=world.a, patient=record, actor=world.admin_a, full_name="Grace B. Hopper")
    change_role(hospital=world.a, membership=membership(world.doctor_a, world.a), role=Role.DOCTOR,
                actor=world.admin_a)
    change_role(hospital=world.a, membership=membership(world.doctor_a, world.a), role=Role.PATIENT,
                actor=world.admin_a)
    assert list(Patient.objects.filter(hospital=world.a, user=world.doctor_a).values_list("pk", "full_name")) == [
        (record.pk, "Grace B. Hopper")]
    # A patient moved to patient is no change at all: no second record either.
    change_role(hospital=world.a, membership=membership(world.patient_a, world.a), role=Role.PATIENT,
                actor=world.admin_a)
    assert Patient.objects.filter(hospital=world.a, user=world.patient_a).count() == 1


def test_role_change_to_patient_through_the_api_gives_the_record_too(world, client_as):
    from hospitals.models import Patient

    target = membership(world.doctor_a, world.a)
    response = client_as("admin_a").patch(url("hospitals", world.a.slug, "members", target.id), {"role": "patient"})
    assert response.status_code == 200, response.content
    assert Patient.objects.filter(hospital=world.a, user=world.doctor_a).exists()


def test_change_role_rejects_an_unknown_role(world, client_as):
    target = membership(world.doctor_a, world.a)
    response = client_as("admin_a").patch(url("hospitals", world.a.slug, "members", target.id), {"role": "king"})
    assert response.status_code == 400 and "role" in response.json()["fields"]


@pytest.mark.parametrize(
    "who, status",
    [("admin_a", 204), ("doctor_a2", 403), ("owner", 403), ("outsider", 404), ("admin_b", 404), ("anonymous", 401)],
)
def test_remove_member(world, client_as, who, status):
    target = membership(world.doctor_a, world.a)
    response = client_as(who).delete(url("hospitals", world.a.slug, "members", target.id))
    assert response.status_code == status, response.content
    assert Membership.objects.filter(pk=target.pk).exists() == (status != 204)


def test_removed_member_loses_access(world, client_as):
    target = membership(world.doctor_a, world.a)
    client_as("admin_a").delete(url("hospitals", world.a.slug, "members", target.id))
    assert client_as("doctor_a").get(url("hospitals", world.a.slug, "patients")).status_code == 404


def test_last_admin_is_never_demoted_or_removed(world, client_as):
    admin = membership(world.admin_a, world.a)
    client = client_as("admin_a")
    demote = client.patch(url("hospitals", world.a.slug, "members", admin.id), {"role": "doctor"})
    remove = client.delete(url("hospitals", world.a.slug, "members", admin.id))
    for response in (demote, remove):
        assert response.status_code == 409 and response.json()["error"] == "last_admin"
    admin.refresh_from_db()
    assert admin.role == Role.ADMIN

    # With a second admin the first may step down, and then the second is the last one.
    second = membership(world.doctor_a, world.a)
    assert client.patch(url("hospitals", world.a.slug, "members", second.id), {"role": "admin"}).status_code == 200
    assert client.patch(url("hospitals", world.a.slug, "members", admin.id), {"role": "doctor"}).status_code == 200
    last = client_as("doctor_a").delete(url("hospitals", world.a.slug, "members", second.id))
    assert last.status_code == 409


def test_outsider_cannot_tell_a_missing_member_from_another_hospitals(world, client_as):
    theirs = membership(world.doctor_a, world.a)
    ids = [theirs.id, 999999, "x"]
    responses = [client_as("admin_b").get(url("hospitals", world.b.slug, "members", i)) for i in ids]
    assert {r.status_code for r in responses} == {404}
    assert len({r.content for r in responses}) == 1
    responses = [client_as("admin_b").get(url("hospitals", world.a.slug, "members", i)) for i in ids]
    assert {r.status_code for r in responses} == {404} and len({r.content for r in responses}) == 1


def test_admin_of_another_hospital_cannot_change_members_through_their_own_url(world, client_as):
    theirs = membership(world.doctor_a, world.a)
    response = client_as("admin_b").patch(url("hospitals", world.b.slug, "members", theirs.id), {"role": "admin"})
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.role == Role.DOCTOR


@pytest.mark.django_db(transaction=True)
def test_two_admins_demoting_each_other_at_once_leave_one_admin(world):
    """The race the hospital row lock exists for.

    The first demotion stays uncommitted while the second runs: without the lock the second still sees
    the first as an admin, both succeed, and the hospital is left with none.
    """
    import threading

    from django.db import connection, transaction

    from hospitals.errors import DomainError
    from hospitals.services import change_role

    second = change_role(
        hospital=world.a, membership=membership(world.doctor_a, world.a), role=Role.ADMIN, actor=world.admin_a
    )
    first = membership(world.admin_a, world.a)
    first_in_flight, second_done, outcomes = threading.Event(), threading.Event(), {}

    def demote_first():
        try:
            with transaction.atomic():
                change_role(hospital=world.a, membership=first, role=Role.DOCTOR, actor=world.doctor_a)
                first_in_flight.set()
                second_done.wait(timeout=3)  # with the lock, the second is blocked until this commits
            outcomes["first"] = "demoted"
        finally:
            connection.close()

    def demote_second():
        try:
            first_in_flight.wait(timeout=10)
            change_role(hospital=world.a, membership=second, role=Role.DOCTOR, actor=world.admin_a)
            outcomes["second"] = "demoted"
        except DomainError as exc:
            outcomes["second"] = exc.code
        finally:
            second_done.set()
            connection.close()

    threads = [threading.Thread(target=demote_first), threading.Thread(target=demote_second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert outcomes == {"first": "demoted", "second": "last_admin"}
    assert Membership.objects.filter(hospital=world.a, role=Role.ADMIN).count() == 1


def test_an_admin_whose_account_is_deactivated_does_not_count_as_the_other_admin(world, client_as):
    """A deactivated account signs in nowhere: an admin stepping down beside one would leave the hospital
    with nobody who can manage it. The deactivated admin's membership itself can still be removed."""
    gone = membership(world.doctor_a, world.a)
    gone.role = Role.ADMIN
    gone.save(update_fields=["role"])
    world.doctor_a.is_active = False
    world.doctor_a.save(update_fields=["is_active"])
    admin = membership(world.admin_a, world.a)
    client = client_as("admin_a")

    demote = client.patch(url("hospitals", world.a.slug, "members", admin.id), {"role": "doctor"})
    remove = client.delete(url("hospitals", world.a.slug, "members", admin.id))

    for response in (demote, remove):
        assert response.status_code == 409 and response.json()["error"] == "last_admin"
        assert "deactivated" in response.json()["detail"]
    admin.refresh_from_db()
    assert admin.role == Role.ADMIN
    assert client.delete(url("hospitals", world.a.slug, "members", gone.id)).status_code == 204


def test_a_refused_choice_that_quotes_half_a_surrogate_pair_is_still_a_400(world, client_as):
    """JSON may carry a lone surrogate ("\\ud800"); the refusal quotes it, escaped, as UTF-8 can."""
    member = Membership.objects.get(hospital=world.a, user=world.doctor_a)
    response = client_as("admin_a").patch(url("hospitals", world.a.slug, "members", member.pk),
                                          data='{"role": "\\ud800"}', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"] == 'role: "\\ud800" is not a valid choice.'
    member.refresh_from_db()
    assert member.role == "doctor"
