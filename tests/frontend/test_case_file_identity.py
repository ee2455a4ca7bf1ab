"""The case viewer and the patient record show staff whom a DICOM file names, and warn where it is not the
scan's patient (diagnostics/identity.py); a patient's pages never show the file's identifiers."""

import datetime

import pytest

from diagnostics.models import Scan
from tests.diagnostics import samples
from tests.diagnostics.helpers import patient_of, upload
from tests.factories import make_patient

pytestmark = pytest.mark.django_db

FILE_ID = samples.DICOM_PATIENT_ID


def upload_dicom_for(world, api, record) -> Scan:
    response = upload(api(world.colleague), world.a, samples.dicom_bytes(), name="scan.dcm", patient=str(record.pk))
    assert response.status_code == 201, response.content
    return Scan.objects.get(pk=response.json()["id"])


def page(client, user, path) -> str:
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def test_staff_are_warned_when_the_file_names_another_patient(client, world, api):
    record = make_patient(world.a, full_name="Grace Hopper", medical_record_number="MRN-777",
                          date_of_birth=datetime.date(1980, 5, 5))
    scan = upload_dicom_for(world, api, record)

    doctor_sees = page(client, world.colleague, f"/h/st-anne/scans/{scan.pk}/")
    assert "Patient named in the file" in doctor_sees and "Testpatient, Ada" in doctor_sees
    assert f"patient ID <strong>{FILE_ID}</strong>" in doctor_sees and "born <strong>1970-01-01</strong>" in doctor_sees
    assert 'id="identity-warning"' in doctor_sees
    assert "not this record's number (MRN-777)" in doctor_sees
    assert "its birth date is not this patient's (1980-05-05)" in doctor_sees
    assert "Check that this scan is Grace Hopper's" in doctor_sees
    # A doctor cannot remove a scan; an admin can, from the same page.
    assert "ask an admin of the hospital to remove it" in doctor_sees
    assert "remove it below" in page(client, world.admin_a, f"/h/st-anne/scans/{scan.pk}/")

    record_page = page(client, world.colleague, f"/h/st-anne/patients/{record.pk}/")
    assert "Check patient" in record_page


def test_a_file_that_names_the_records_patient_is_shown_without_a_warning(client, world, api):
    record = make_patient(world.a, medical_record_number=FILE_ID.lower(), date_of_birth=datetime.date(1970, 1, 1))
    scan = upload_dicom_for(world, api, record)
    html = page(client, world.colleague, f"/h/st-anne/scans/{scan.pk}/")
    assert "Patient named in the file" in html and 'id="identity-warning"' not in html
    assert "Check patient" not in page(client, world.colleague, f"/h/st-anne/patients/{record.pk}/")


def test_a_patient_never_sees_the_files_identifiers(client, world, api):
    record = patient_of(world.owner, world.a)
    record.medical_record_number = "MRN-777"
    record.save()
    response = upload(api(world.owner), world.a, samples.dicom_bytes(), name="scan.dcm")
    assert response.status_code == 201
    html = page(client, world.owner, f"/h/st-anne/scans/{response.json()['id']}/")
    assert FILE_ID not in html and "Testpatient" not in html and "Patient named in the file" not in html
    # Another hospital's staff find nothing at all.
    client.force_login(world.outsider)
    assert client.get(f"/h/st-anne/scans/{response.json()['id']}/").status_code == 404
