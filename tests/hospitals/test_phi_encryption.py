"""PHI columns (django-encrypted-model-fields): encrypted at rest, and the field key can be rotated."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection
from encrypted_model_fields import fields as encrypted_fields

from hospitals.models import Patient
from tests.factories import make_hospital, make_patient

pytestmark = pytest.mark.django_db


@pytest.fixture
def field_keys(settings):
    """use([newest, ..., oldest]) configures FIELD_ENCRYPTION_KEY as a comma-separated environment would.

    The library builds its MultiFernet once at import, so the test rebuilds it through the library's own
    get_crypter() after each change and puts the original back afterwards.
    """
    original = encrypted_fields.CRYPTER

    def use(keys):
        settings.FIELD_ENCRYPTION_KEY = list(keys)
        encrypted_fields.CRYPTER = encrypted_fields.get_crypter()

    yield use
    encrypted_fields.CRYPTER = original


def stored_columns(patient_id):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT full_name, date_of_birth, medical_record_number, notes FROM hospitals_patient WHERE id = %s",
            [patient_id],
        )
        return cursor.fetchone()


def test_raw_sql_shows_no_plaintext_phi():
    import datetime

    patient = make_patient(
        make_hospital(), full_name="Winifred Athelstan", date_of_birth=datetime.date(1944, 7, 19),
        medical_record_number="NF-884422", notes="Left temporal lesion",
    )
    raw = " ".join(str(v) for v in stored_columns(patient.pk))
    for plaintext in ("Winifred", "Athelstan", "1944", "07-19", "884422", "temporal"):
        assert plaintext not in raw
    assert "884422" not in patient.mrn_digest and len(patient.mrn_digest) == 64
    fresh = Patient.objects.get(pk=patient.pk)
    assert (fresh.full_name, fresh.date_of_birth, fresh.medical_record_number) == (
        "Winifred Athelstan", datetime.date(1944, 7, 19), "NF-884422"
    )


def test_new_key_first_old_key_still_decrypts_then_reencrypt(field_keys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    field_keys([old])
    patient = make_patient(make_hospital(), full_name="Cordelia Maplethorpe", medical_record_number="NF-1")
    old_tokens = stored_columns(patient.pk)

    field_keys([new, old])
    assert Patient.objects.get(pk=patient.pk).full_name == "Cordelia Maplethorpe"
    later = make_patient(make_hospital(), full_name="Horatio Blenkinsop")
    assert Fernet(new).decrypt(stored_columns(later.pk)[0].encode()) == b"Horatio Blenkinsop"

    out = io.StringIO()
    call_command("reencrypt_phi", stdout=out, stderr=io.StringIO())
    assert "re-encrypted under the first key in FIELD_ENCRYPTION_KEY" in out.getvalue() and " 2 patients" in out.getvalue()
    new_tokens = stored_columns(patient.pk)
    assert new_tokens[0] != old_tokens[0]
    assert Fernet(new).decrypt(new_tokens[0].encode()) == b"Cordelia Maplethorpe"

    field_keys([new])  # the old key is retired
    fresh = Patient.objects.get(pk=patient.pk)
    assert (fresh.full_name, fresh.medical_record_number, fresh.date_of_birth) == ("Cordelia Maplethorpe", "NF-1", None)


def test_reencrypt_refuses_tokens_no_key_opens(field_keys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    field_keys([old])
    patient = make_patient(make_hospital(), full_name="Ambrose Tillery")
    before = stored_columns(patient.pk)
    field_keys([new])  # the old key was dropped too early
    with pytest.raises(CommandError, match="add the old key"):
        call_command("reencrypt_phi", stdout=io.StringIO(), stderr=io.StringIO())
    assert stored_columns(patient.pk) == before  # nothing was double-encrypted


def test_reencrypt_covers_every_encrypted_column_not_only_patients(field_keys, world, settings):
    """Review notes and identifiers read from a DICOM header are under the same key: a rotation that
    left them behind would make them unreadable once the old key is dropped."""
    from diagnostics import services
    from diagnostics.models.scans import Review, Scan
    from tests.diagnostics import samples
    from tests.diagnostics.helpers import finish

    # `world` has written its patients under the test settings' key: that key is the old one here.
    configured = settings.FIELD_ENCRYPTION_KEY
    old = configured if isinstance(configured, str) else configured[0]
    new = Fernet.generate_key().decode()
    patient = Patient.objects.get(hospital=world.a, user=world.owner)
    scan, _ = services.upload_scan(hospital=world.a, patient=patient, data=samples.dicom_bytes())
    finish(scan, "pituitary")
    services.review_scan(hospital=world.a, scan=scan, reviewer=world.doctor_a, label="pituitary",
                         notes="Compare with the March study")

    field_keys([new, old])
    out = io.StringIO()
    call_command("reencrypt_phi", stdout=out, stderr=io.StringIO())
    summary = out.getvalue()
    assert "1 reviews" in summary and "1 scans" in summary, summary

    field_keys([new])  # the old key is retired
    scan = Scan.objects.get(pk=scan.pk)
    assert (scan.source_patient_name, scan.source_patient_id) == (samples.DICOM_PATIENT_NAME, samples.DICOM_PATIENT_ID)
    assert Review.objects.get(scan_id=scan.pk).notes == "Compare with the March study"
    assert Patient.objects.get(pk=patient.pk).full_name == patient.full_name


def test_reencrypt_in_batches_reaches_every_row(field_keys):
    from hospitals.field_keys import reencrypt_fields

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    field_keys([old])
    hospital = make_hospital()
    patients = [make_patient(hospital, full_name=f"Patient {n}") for n in range(5)]
    field_keys([new, old])
    batches = []
    report = reencrypt_fields(batch_rows=2, progress=lambda table, rows: batches.append((table.label, rows)))
    assert [rows for label, rows in batches if label == "patients"] == [2, 2, 1]
    assert report.rows_by_table["patients"] == 5
    field_keys([new])
    assert [Patient.objects.get(pk=p.pk).full_name for p in patients] == [f"Patient {n}" for n in range(5)]


def test_reencrypt_warns_when_the_new_key_is_not_first(field_keys):
    """The old key left first re-encrypts everything under the old key, and "the older keys can be
    dropped" would then have the operator drop the one key every token needs. A rotation always finds
    tokens under an older key; finding none is the sign, and the command says so."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    field_keys([old])
    patient = make_patient(make_hospital(), full_name="Percival Ogilvy")

    field_keys([old, new])  # the wrong order
    out = io.StringIO()
    call_command("reencrypt_phi", stdout=out, stderr=io.StringIO())
    assert "not first in FIELD_ENCRYPTION_KEY" in out.getvalue()
    assert "can be dropped" not in out.getvalue()

    field_keys([new, old])  # put right, the rerun rotates and says the old key can go
    out = io.StringIO()
    call_command("reencrypt_phi", stdout=out, stderr=io.StringIO())
    assert "not first" not in out.getvalue() and "can be dropped" in out.getvalue()
    field_keys([new])
    assert Patient.objects.get(pk=patient.pk).full_name == "Percival Ogilvy"


def test_at_verbosity_0_reencrypt_shows_no_progress_bar(field_keys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    field_keys([old])
    make_patient(make_hospital(), full_name="Ottoline Fairweather")
    field_keys([new, old])
    out, err = io.StringIO(), io.StringIO()
    call_command("reencrypt_phi", verbosity=0, stdout=out, stderr=err)
    assert "re-encrypted under the first key in FIELD_ENCRYPTION_KEY" in out.getvalue() and err.getvalue() == ""
