"""Whether a scan's own file names the patient the scan is filed under.

A DICOM file carries the patient's name, ID and birth date as the scanner recorded them; they are kept
encrypted on the scan and never reach the model. A scan filed under the wrong patient is an error a
correct reading does not undo, so the hospital's staff are shown what the file says beside the record,
and told where the two differ. Only what can be compared exactly is compared: the file's patient ID with
the record's medical record number (as records are matched, `hospitals.keys.normalised_mrn`), and the
birth dates. Names are shown, not compared: systems spell and order them differently.

A difference is a reason to check, not proof of an error: a file from another hospital carries that
hospital's patient ID. The birth date, where both sides have one, is the stronger sign.
"""

import datetime
import re
from dataclasses import dataclass

from hospitals.keys import normalised_mrn

PATIENT_ID = "patient_id"
BIRTH_DATE = "birth_date"


@dataclass(frozen=True)
class FileIdentity:
    """The patient a scan's file names, and which of it disagrees with the scan's patient record."""

    patient_name: str
    patient_id: str
    birth_date: datetime.date | None
    # The header's birth date as written, for one that is not a DICOM date (shown, never compared).
    birth_date_text: str
    differences: tuple[str, ...]

    def as_dict(self) -> dict:
        return {
            "patient_name": self.patient_name,
            "patient_id": self.patient_id,
            "birth_date": self.birth_date.isoformat() if self.birth_date else self.birth_date_text,
            "differs_from_record": list(self.differences),
        }


def file_identity(scan) -> FileIdentity | None:
    """What the scan's file says about its patient, checked against `scan.patient`; None when the file
    names nobody (JPEG, PNG and NIfTI files carry no patient)."""
    if not (scan.source_patient_name or scan.source_patient_id or scan.source_birth_date):
        return None
    birth_date = dicom_date(scan.source_birth_date)
    record = scan.patient
    differences = []
    if record is not None:
        if (scan.source_patient_id.strip() and record.medical_record_number.strip()
                and normalised_mrn(scan.source_patient_id) != normalised_mrn(record.medical_record_number)):
            differences.append(PATIENT_ID)
        if birth_date and record.date_of_birth and birth_date != record.date_of_birth:
            differences.append(BIRTH_DATE)
    return FileIdentity(
        patient_name=person_name(scan.source_patient_name),
        patient_id=scan.source_patient_id.strip(),
        birth_date=birth_date,
        birth_date_text="" if birth_date else scan.source_birth_date.strip(),
        differences=tuple(differences),
    )


def person_name(value: str) -> str:
    """A DICOM person name (family^given^middle^prefix^suffix) as a person would write it.

    "Testpatient^Ada" reads "Testpatient, Ada". Only the first of the name's representations (before
    any "=") is used: the others repeat it in ideographic or phonetic script.
    """
    parts = [part.strip() for part in value.split("=", 1)[0].split("^")] + [""] * 5
    family, given, middle, prefix, suffix = parts[:5]
    rest = " ".join(part for part in (prefix, given, middle, suffix) if part)
    return f"{family}, {rest}" if family and rest else (family or rest)


def dicom_date(value: str) -> datetime.date | None:
    """A DICOM date (YYYYMMDD; older files write YYYY.MM.DD), else None."""
    digits = re.sub(r"[.\-]", "", value.strip())
    if not re.fullmatch(r"\d{8}", digits):
        return None
    try:
        return datetime.datetime.strptime(digits, "%Y%m%d").date()
    except ValueError:
        return None
