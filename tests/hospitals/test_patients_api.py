import uuid

import pytest
from django.db import connection

from hospitals.models import AuditEvent, Patient
from tests.factories import make_patient
from tests.hospitals.conftest import url

pytestmark = pytest.mark.django_db


def record_of(user, hospital):
    return Patient.objects.get(hospital=hospital, user=user)


@pytest.mark.parametrize(
    "who, status, count",
    [
        ("admin_a", 200, 2),
        ("doctor_a", 200, 2),
        ("owner", 200, 1),  # a patient sees only their own record
        ("outsider", 404, None),
        ("admin_b", 404, None),
        ("anonymous", 401, None),
    ],
)
def test_list_patients(world, client_as, who, status, count):
    response = client_as(who).get(url("hospitals", world.a.slug, "patients"))
    assert response.status_code == status, response.content
    if count is not None:
        assert response.json()["count"] == count
    if who == "owner":
        assert response.json()["results"][0]["id"] == str(record_of(world.owner, world.a).id)


def test_listing_patients_is_audited(world, client_as):
    client_as("doctor_a").get(url("hospitals", world.a.slug, "patients"))
    event = AuditEvent.objects.filter(hospital_id=world.a.id, action="patient.list").get()
    assert event.actor_id == world.doctor_a.pk


@pytest.mark.parametrize(
    "who, status",
    [("admin_a", 201), ("doctor_a", 201), ("owner", 403), ("outsider", 404), ("anonymous", 401)],
)
def test_create_patient(world, client_as, who, status):
    payload = {"full_name": "Rosalind Fenwick", "date_of_birth": "1961-04-12", "medical_record_number": "SA-0042"}
    response = client_as(who).post(url("hospitals", world.a.slug, "patients"), payload, format="json")
    assert response.status_code == status, response.content
    assert Patient.objects.filter(hospital=world.a).count() == (3 if status == 201 else 2)
    if status == 201:
        body = response.json()
        assert body["full_name"] == "Rosalind Fenwick" and body["date_of_birth"] == "1961-04-12"
        assert AuditEvent.objects.filter(action="patient.create", object_id=body["id"]).exists()
    else:
        assert set(response.json()) == {"error", "detail"}


def test_create_patient_validates_fields(world, client_as):
    response = client_as("doctor_a").post(url("hospitals", world.a.slug, "patients"), {"date_of_birth": "soon"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid" and {"full_name", "date_of_birth"} <= set(body["fields"])


@pytest.mark.parametrize("born", ["2999-01-01", "1850-06-01"])
def test_a_date_of_birth_that_is_a_typing_slip_is_refused(world, client_as, born):
    response = client_as("doctor_a").post(url("hospitals", world.a.slug, "patients"),
                                          {"full_name": "X Y", "date_of_birth": born}, format="json")
    assert response.status_code == 400 and response.json()["error"] == "invalid_date_of_birth"


def test_duplicate_mrn_in_one_hospital_is_a_clear_conflict(world, client_as):
    make_patient(world.a, medical_record_number="SA-7")
    make_patient(world.b, medical_record_number="SA-7")  # another hospital may use the same number
    response = client_as("doctor_a").post(
        url("hospitals", world.a.slug, "patients"), {"full_name": "X Y", "medical_record_number": "sa-7 "}
    )
    assert response.status_code == 409
    assert response.json()["error"] == "duplicate_mrn"


@pytest.mark.parametrize(
    "who, status",
    [
        ("owner", 200),
        ("doctor_a", 200),
        ("admin_a", 200),
        ("patient_a2", 404),  # another patient of the same hospital: not theirs, and not told it exists
        ("outsider", 404),
        ("admin_b", 404),
        ("anonymous", 401),
    ],
)
def test_read_patient(world, client_as, who, status):
    patient = record_of(world.owner, world.a)
    before = AuditEvent.objects.filter(action="patient.read").count()
    response = client_as(who).get(url("hospitals", world.a.slug, "patients", patient.id))
    assert response.status_code == status, response.content
    if status == 200:
        assert response.json()["full_name"] == patient.full_name
        event = AuditEvent.objects.filter(action="patient.read").latest("id")
        assert (event.actor_id, event.object_id, str(event.hospital_id)) == (
            getattr(world, who).pk, str(patient.id), str(world.a.id)
        )
    else:
        assert AuditEvent.objects.filter(action="patient.read").count() == before


def test_outsider_cannot_tell_a_missing_patient_from_another_hospitals(world, client_as):
    theirs = record_of(world.owner, world.a)
    outsider = client_as("outsider")
    # Through the other hospital's URL: not a member, so the hospital itself is "not found".
    via_a = [outsider.get(url("hospitals", world.a.slug, "patients", pid)) for pid in (theirs.id, uuid.uuid4())]
    # Through their own hospital's URL: another hospital's id is exactly as unknown as a made-up one.
    via_b = [
        outsider.get(url("hospitals", world.b.slug, "patients", pid)) for pid in (theirs.id, uuid.uuid4(), "nonsense")
    ]
    for responses in (via_a, via_b):
        assert {r.status_code for r in responses} == {404}
        assert len({r.content for r in responses}) == 1
    assert via_b[0].json() == {"error": "not_found", "detail": "No such patient"}
    missing_hospital = outsider.get(url("hospitals", "no-such-hospital", "patients", theirs.id))
    assert missing_hospital.content == via_a[0].content


def test_phi_is_not_stored_in_plain_text(world, client_as):
    response = client_as("doctor_a").post(
        url("hospitals", world.a.slug, "patients"),
        {"full_name": "Philippa Quennell", "date_of_birth": "1958-11-30", "medical_record_number": "MRN-31337",
         "notes": "Seizures since March"},
    )
    patient_id = response.json()["id"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT full_name, date_of_birth, medical_record_number, notes, mrn_digest FROM hospitals_patient "
            "WHERE id = %s",
            [patient_id],
        )
        row = cursor.fetchone()
    raw = " ".join(str(v) for v in row)
    for plaintext in ("Philippa", "Quennell", "1958", "MRN-31337", "31337", "Seizures"):
        assert plaintext not in raw
    assert client_as("doctor_a").get(url("hospitals", world.a.slug, "patients", patient_id)).json()["notes"] == (
        "Seizures since March"
    )


def test_platform_operator_reads_no_patients(world, api):
    from tests.factories import make_user

    operator = make_user("operator@neurofed.example", is_superuser=True, is_staff=True)
    response = api(operator).get(url("hospitals", world.a.slug, "patients"))
    assert response.status_code == 404


@pytest.mark.parametrize(
    "who, status",
    [
        ("doctor_a", 200),
        ("admin_a", 200),
        ("owner", 403),  # a patient reads their record but does not edit it
        ("patient_a2", 403),
        ("outsider", 404),
        ("admin_b", 404),
        ("anonymous", 401),
    ],
)
def test_update_patient(world, client_as, who, status):
    patient = record_of(world.owner, world.a)
    response = client_as(who).patch(
        url("hospitals", world.a.slug, "patients", patient.id), {"full_name": "Corrected Name", "notes": "n"}
    )
    assert response.status_code == status, response.content
    patient.refresh_from_db()
    assert (patient.full_name == "Corrected Name") == (status == 200)
    if status == 200:
        event = AuditEvent.objects.get(action="patient.update")
        assert event.detail == "full_name, notes" and "Corrected" not in str(event.__dict__)
        assert patient.medical_record_number == ""  # a partial update leaves other fields alone


def test_update_patient_mrn_keeps_the_digest_and_uniqueness(world, client_as):
    make_patient(world.a, medical_record_number="SA-1")
    patient = make_patient(world.a, medical_record_number="SA-2")
    client = client_as("doctor_a")
    clash = client.patch(url("hospitals", world.a.slug, "patients", patient.id), {"medical_record_number": "SA-1"})
    assert clash.status_code == 409 and clash.json()["error"] == "duplicate_mrn"
    assert client.patch(url("hospitals", world.a.slug, "patients", patient.id), {"medical_record_number": "SA-3"}).status_code == 200
    from hospitals.keys import mrn_digest

    assert Patient.objects.get(pk=patient.pk).mrn_digest == mrn_digest(world.a, "SA-3")


def test_a_record_number_given_to_another_record_at_the_same_moment_is_a_clear_conflict(world, client_as, monkeypatch):
    """The look-up before the save cannot see a correction committed in between: the unique constraint
    catches it, and the answer is the same 409 as when the number was taken before."""
    first = make_patient(world.a, full_name="First Record", medical_record_number="RN-1")
    second = make_patient(world.a, full_name="Second Record", medical_record_number="RN-2")
    save = Patient.save

    def save_after_a_colleague(patient, *args, **kwargs):
        if patient.pk == second.pk:  # the colleague's correction of the first record lands now
            Patient.objects.filter(pk=first.pk).update(mrn_digest=patient.mrn_digest)
        return save(patient, *args, **kwargs)

    monkeypatch.setattr(Patient, "save", save_after_a_colleague)
    response = client_as("doctor_a").patch(url("hospitals", world.a.slug, "patients", second.pk),
                                           {"medical_record_number": "RN-9"}, format="json")
    assert response.status_code == 409 and response.json()["error"] == "duplicate_mrn"
    second.refresh_from_db()
    assert second.medical_record_number == "RN-2"


def test_the_staffs_notes_are_not_the_patients_to_read(world, client_as):
    patient = record_of(world.owner, world.a)
    changed = client_as("doctor_a").patch(url("hospitals", world.a.slug, "patients", patient.id),
                                          {"notes": "Discuss the follow-up with the family first"}, format="json")
    assert changed.status_code == 200 and changed.json()["notes"] == "Discuss the follow-up with the family first"
    assert client_as("admin_a").get(url("hospitals", world.a.slug, "patients", patient.id)).json()["notes"]
    own = client_as("owner").get(url("hospitals", world.a.slug, "patients", patient.id)).json()
    listed = client_as("owner").get(url("hospitals", world.a.slug, "patients")).json()["results"]
    assert own["full_name"] == patient.full_name and "notes" not in own
    assert [record["id"] for record in listed] == [str(patient.id)] and "notes" not in listed[0]
