"""The patient record page for staff (/h/<slug>/patients/<id>/, frontend/views/patients.py)."""

import datetime

import pytest

from diagnostics.models import Scan
from hospitals.models import AuditEvent, Patient
from tests.diagnostics.helpers import finish, patient_of, upload
from tests.diagnostics.samples import jpeg_bytes
from tests.factories import make_patient

pytestmark = pytest.mark.django_db


@pytest.fixture
def record(world, api):
    """Patient A1's record, with one analysed scan; patient A2 has a scan of their own."""
    own = Scan.objects.get(pk=upload(api(world.owner), world.a, jpeg_bytes("glioma", 4)).json()["id"])
    finish(own, "glioma", 0.9)
    upload(api(world.patient_a2), world.a, jpeg_bytes("pituitary", 4))
    patient = patient_of(world.owner, world.a)
    patient.scan_id = own.pk
    return patient


def url(patient, slug="st-anne"):
    return f"/h/{slug}/patients/{patient.pk}/"


def post(client, patient, **changes):
    data = {"full_name": patient.full_name, "date_of_birth": patient.date_of_birth or "",
            "medical_record_number": patient.medical_record_number, "notes": patient.notes, **changes}
    return client.post(url(patient), data)


def test_only_this_hospitals_staff_open_a_record(client, world, record):
    assert client.get(url(record))["Location"].startswith("/accounts/login/")
    for outsider in (world.outsider, world.admin_b):
        client.force_login(outsider)
        assert client.get(url(record)).status_code == 404
        assert client.get(url(record, "north-general")).status_code == 404
    for patient in (world.owner, world.patient_a2):
        client.force_login(patient)
        assert client.get(url(record)).status_code == 403
    client.force_login(world.colleague)
    assert client.get("/h/st-anne/patients/not-an-id/").status_code == 404
    other = make_patient(world.b, full_name="Someone Else")
    assert client.get(url(other)).status_code == 404


def test_a_doctor_reads_the_record_with_this_patients_scans_only(client, world, record):
    client.force_login(world.colleague)
    html = client.get(url(record)).content.decode()
    assert record.full_name in html and f"/h/st-anne/scans/{record.scan_id}/" in html
    other_scans = Scan.objects.exclude(patient=record).values_list("pk", flat=True)
    assert other_scans and not any(str(pk) in html for pk in other_scans)
    assert "Glioma" in html and "(software)" in html
    assert AuditEvent.objects.filter(action="patient.read", object_id=str(record.pk), actor_id=world.colleague.pk).exists()


def test_the_case_viewer_links_to_the_record(client, world, record):
    client.force_login(world.colleague)
    assert url(record) in client.get(f"/h/st-anne/scans/{record.scan_id}/").content.decode()


def test_staff_correct_the_record_and_the_audit_names_the_fields_only(client, world, record):
    client.force_login(world.admin_a)
    response = post(client, record, full_name="Ada King", date_of_birth="1915-12-10")
    assert response.status_code == 302 and response["Location"] == url(record)
    saved = Patient.objects.get(pk=record.pk)
    assert saved.full_name == "Ada King" and saved.date_of_birth == datetime.date(1915, 12, 10)
    event = AuditEvent.objects.get(action="patient.update")
    assert event.detail == "date_of_birth, full_name" and "Ada" not in event.detail
    assert "The patient record has been saved." in client.get(url(record)).content.decode()


@pytest.mark.parametrize("changes, sentence", [
    ({"full_name": ""}, "Enter the patient&#x27;s full name."),
    ({"date_of_birth": "10/12/1915"}, "Enter the date of birth as year-month-day"),
    ({"medical_record_number": "MRN-TAKEN"}, "already exists in the hospital"),
    ({"date_of_birth": "2099-01-01"}, "in the future"),
    ({"date_of_birth": "1066-10-14"}, "before 1900"),
])
def test_a_refused_correction_says_why_and_changes_nothing(client, world, record, changes, sentence):
    make_patient(world.a, full_name="Holder", medical_record_number="MRN-TAKEN")
    before = Patient.objects.get(pk=record.pk)
    client.force_login(world.colleague)
    response = post(client, record, **changes)
    assert response.status_code == 400 and sentence in response.content.decode()
    after = Patient.objects.get(pk=record.pk)
    assert (after.full_name, after.date_of_birth, after.medical_record_number) == (
        before.full_name, before.date_of_birth, before.medical_record_number)
    assert not AuditEvent.objects.filter(action="patient.update").exists()
