"""diagnostics/identity.py: what a scan's file says about its patient, against the patient record."""

import datetime

import pytest

from diagnostics.identity import BIRTH_DATE, PATIENT_ID, dicom_date, file_identity, person_name
from diagnostics.models.scans import Scan
from hospitals.models import Patient


def scan_of(record=None, *, name="Testpatient^Ada", patient_id="MRN-000123", born="19700101") -> Scan:
    return Scan(patient=record, source_patient_name=name, source_patient_id=patient_id, source_birth_date=born)


def record(mrn="MRN-000123", born=datetime.date(1970, 1, 1)) -> Patient:
    return Patient(full_name="Ada Testpatient", medical_record_number=mrn, date_of_birth=born)


def test_a_file_that_names_the_record_differs_in_nothing():
    identity = file_identity(scan_of(record()))
    assert identity.patient_name == "Testpatient, Ada" and identity.patient_id == "MRN-000123"
    assert identity.birth_date == datetime.date(1970, 1, 1) and identity.differences == ()


def test_the_patient_id_is_matched_as_record_numbers_are():
    assert file_identity(scan_of(record(mrn=" mrn-000123 "))).differences == ()
    assert file_identity(scan_of(record(mrn="MRN-000124"))).differences == (PATIENT_ID,)


def test_a_birth_date_that_differs_is_named_beside_the_id():
    other = record(mrn="X-1", born=datetime.date(1971, 1, 1))
    assert file_identity(scan_of(other)).differences == (PATIENT_ID, BIRTH_DATE)
    assert file_identity(scan_of(record(born=datetime.date(1970, 1, 2)))).differences == (BIRTH_DATE,)


@pytest.mark.parametrize("scan", [
    scan_of(record(mrn="", born=None)),  # the record holds neither
    scan_of(record(), patient_id="", born=""),  # the file names only a name
    scan_of(record(), patient_id="   ", born="not a date"),
    scan_of(None),  # a scan imported without a patient
], ids=["record-without-either", "file-without-either", "blank-id-and-unreadable-date", "no-record"])
def test_only_what_both_sides_hold_is_compared(scan):
    assert file_identity(scan).differences == ()


def test_a_file_that_names_nobody_has_no_identity():
    assert file_identity(scan_of(record(), name="", patient_id="", born="")) is None


def test_an_unreadable_birth_date_is_shown_as_written():
    identity = file_identity(scan_of(record(), born="ABC"))
    assert identity.birth_date is None and identity.as_dict()["birth_date"] == "ABC"
    assert file_identity(scan_of(record())).as_dict() == {
        "patient_name": "Testpatient, Ada", "patient_id": "MRN-000123", "birth_date": "1970-01-01",
        "differs_from_record": [],
    }


@pytest.mark.parametrize("value, shown", [
    ("Testpatient^Ada", "Testpatient, Ada"),
    ("Doe^John^Quincy^Dr^Jr", "Doe, Dr John Quincy Jr"),
    ("Doe", "Doe"),
    ("^Ada", "Ada"),
    ("Yamada^Tarou=山田^太郎=やまだ^たろう", "Yamada, Tarou"),
    ("", ""),
])
def test_dicom_person_names_read_as_written_by_people(value, shown):
    assert person_name(value) == shown


@pytest.mark.parametrize("value, parsed", [
    ("19700101", datetime.date(1970, 1, 1)),
    ("1970.01.01", datetime.date(1970, 1, 1)),
    ("19701301", None),
    ("1970", None),
    ("", None),
])
def test_dicom_dates(value, parsed):
    assert dicom_date(value) == parsed
