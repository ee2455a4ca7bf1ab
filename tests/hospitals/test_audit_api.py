import pytest
from django.db import DatabaseError, connection, transaction

from hospitals.models import AuditEvent, Patient
from tests.hospitals.conftest import url

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "who, status",
    [("admin_a", 200), ("doctor_a", 403), ("owner", 403), ("outsider", 404), ("admin_b", 404), ("anonymous", 401)],
)
def test_list_audit_events(world, client_as, who, status):
    response = client_as(who).get(url("hospitals", world.a.slug, "audit"))
    assert response.status_code == status, response.content
    if status == 200:
        body = response.json()
        assert body["count"] == AuditEvent.objects.filter(hospital_id=world.a.id).count() > 0
        assert {"next", "previous", "results"} <= set(body)


def test_audit_shows_who_read_which_patient_from_where(world, client_as):
    patient = Patient.objects.get(user=world.owner)
    client_as("doctor_a").get(url("hospitals", world.a.slug, "patients", patient.id), REMOTE_ADDR="10.1.2.3")
    response = client_as("admin_a").get(url("hospitals", world.a.slug, "audit"), {"action": "patient.read"})
    [event] = response.json()["results"]
    assert (event["actor_id"], event["actor_label"], event["object_type"], event["object_id"]) == (
        world.doctor_a.pk, "doctor1@st-anne.example", "patient", str(patient.id)
    )
    assert event["client_address"] == "10.1.2.3"
    assert "Patient" not in str(event)  # ids, never the name


def test_audit_is_paginated_newest_first_and_scoped_to_the_hospital(world, client_as):
    response = client_as("admin_a").get(url("hospitals", world.a.slug, "audit"), {"limit": 2})
    body = response.json()
    assert len(body["results"]) == 2 and body["next"]
    ids = [e["id"] for e in body["results"]]
    assert ids == sorted(ids, reverse=True)
    b_ids = set(AuditEvent.objects.filter(hospital_id=world.b.id).values_list("id", flat=True))
    everything = client_as("admin_a").get(url("hospitals", world.a.slug, "audit"), {"limit": 500}).json()["results"]
    assert not b_ids & {e["id"] for e in everything}


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_audit_api_is_read_only(world, client_as, method):
    before = AuditEvent.objects.count()
    response = getattr(client_as("admin_a"), method)(url("hospitals", world.a.slug, "audit"), {})
    assert response.status_code == 405
    assert AuditEvent.objects.count() == before


def test_audit_events_cannot_be_changed_through_the_orm(world):
    event = AuditEvent.objects.first()
    event.action = "patient.forged"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger exists on PostgreSQL only")
def test_audit_events_cannot_be_changed_even_with_raw_sql(world):
    event = AuditEvent.objects.first()
    for sql in ("UPDATE hospitals_auditevent SET action = 'x' WHERE id = %s", "DELETE FROM hospitals_auditevent WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == event.action


def test_audit_events_are_not_editable_in_the_admin_site(db):
    from django.contrib import admin

    assert not admin.site.is_registered(AuditEvent)
    assert not admin.site.is_registered(Patient)


@pytest.mark.parametrize("remote, stored", [("192.0.2.7", "192.0.2.7"), ("2001:db8::1", "2001:db8::1"), ("unix:/run/sock", None), ("", None)])
def test_client_address_is_kept_only_when_it_is_an_ip(world, client_as, remote, stored):
    patient = Patient.objects.get(user=world.owner)
    response = client_as("doctor_a").get(url("hospitals", world.a.slug, "patients", patient.id), REMOTE_ADDR=remote)
    assert response.status_code == 200
    assert AuditEvent.objects.filter(action="patient.read").latest("id").client_address == stored


@pytest.mark.parametrize("proxies, forwarded, stored", [
    (0, "203.0.113.9", "192.0.2.7"),  # no proxy trusted: a client's own header is ignored
    (1, "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # the proxy appended the client it saw; the rest is the client's
    (2, "198.51.100.1, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
    (2, "203.0.113.9", None),  # fewer entries than proxies: no trustworthy address
])
def test_behind_trusted_proxies_the_client_is_read_from_the_right_of_x_forwarded_for(
        world, client_as, settings, proxies, forwarded, stored):
    settings.TRUSTED_PROXY_COUNT = proxies
    patient = Patient.objects.get(user=world.owner)
    response = client_as("doctor_a").get(url("hospitals", world.a.slug, "patients", patient.id),
                                         REMOTE_ADDR="192.0.2.7", HTTP_X_FORWARDED_FOR=forwarded)
    assert response.status_code == 200
    assert AuditEvent.objects.filter(action="patient.read").latest("id").client_address == stored



# Notes a person typed (a scan removal's reason): sealed under the hospital's data key.


def test_a_note_is_sealed_under_the_hospitals_key_and_read_back_by_its_admin(world, client_as):
    from hospitals.audit import record_audit

    record_audit(actor=world.admin_a, hospital=world.a, action="scan.delete", object_type="scan",
                 object_id="scan-1", note="Uploaded for Mr Quillfeather by mistake")
    with connection.cursor() as cursor:
        cursor.execute("SELECT detail, sealed_note FROM hospitals_auditevent WHERE action = 'scan.delete'")
        detail, sealed = cursor.fetchone()
    assert detail == "" and b"Quillfeather" not in bytes(sealed)
    [event] = client_as("admin_a").get(url("hospitals", world.a.slug, "audit"), {"action": "scan.delete"}).json()[
        "results"]
    assert event["note"] == "Uploaded for Mr Quillfeather by mistake"
    assert all(e["note"] == "" for e in client_as("admin_a").get(
        url("hospitals", world.a.slug, "audit"), {"action": "membership.create"}).json()["results"])


def test_a_note_copied_into_another_event_does_not_open(world):
    from hospitals.audit import note_reader, record_audit

    original = record_audit(actor=world.admin_a, hospital=world.a, action="scan.delete", object_type="scan",
                            object_id="scan-1", note="wrong patient")
    # The trail only appends, so a forger adds a row carrying the sealed note, about another object or
    # in another hospital.
    for hospital, object_id in ((world.a, "scan-2"), (world.b, "scan-1")):
        forged = AuditEvent.objects.create(hospital_id=hospital.id, action="scan.delete", object_type="scan",
                                           object_id=object_id, sealed_note=original.sealed_note)
        assert note_reader(hospital)(forged) == "(this note cannot be opened: it was altered)"
    assert note_reader(world.a)(original) == "wrong patient"


def test_a_note_needs_a_hospital(world):
    from hospitals.audit import record_audit

    with pytest.raises(ValueError, match="no hospital"):
        record_audit(actor=None, hospital=None, action="scan.delete", note="anything")


def test_a_patient_is_kept_in_the_trail_by_account_id_and_shown_by_record(world, client_as):
    """A patient's email is a patient detail and the trail is never erased: the row keeps no email, and
    the API names the patient by their record, as the page does, for rows written before that too."""
    from hospitals.audit import record_audit

    record = Patient.objects.get(hospital=world.a, user=world.owner)
    new = record_audit(actor=world.owner, hospital=world.a, action="scan.upload", object_type="scan",
                       object_id="scan-new")
    assert new.actor_label == "" and new.actor_id == world.owner.pk
    AuditEvent.objects.create(hospital_id=world.a.id, actor_id=world.owner.pk, actor_label=world.owner.email,
                              action="scan.upload", object_type="scan", object_id="scan-old")
    doctor = record_audit(actor=world.doctor_a, hospital=world.a, action="scan.view", object_type="scan",
                          object_id="scan-new")
    assert doctor.actor_label == world.doctor_a.email  # staff stay named: their accounts may go
    body = client_as("admin_a").get(url("hospitals", world.a.slug, "audit"), {"action": "scan.upload"}).json()
    assert [e["actor_label"] for e in body["results"]] == [f"patient {record.pk}"] * 2
    assert world.owner.email not in str(body)


@pytest.mark.parametrize("action, sentence", [("x\x00", "Null characters are not allowed."),
                                              ("a" * 65, "Ensure this field has no more than 64 characters.")])
def test_an_action_filter_the_trail_cannot_hold_is_a_400(world, client_as, action, sentence):
    response = client_as("admin_a").get(url("hospitals", world.a.slug, "audit"), {"action": action})
    assert response.status_code == 400
    assert response.json()["detail"] == f"action: {sentence}"
