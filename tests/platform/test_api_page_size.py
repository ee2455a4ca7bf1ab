"""The API's lists answer at most MAX_LIMIT rows a request, whatever `limit` asks for: a hospital's
tables are long, and one request must not load and serialize a whole one."""

import pytest

from diagnostics.models.scans import Scan, ScanStatus
from hospitals.models import AuditEvent, Patient
from neurofed.pagination import MAX_LIMIT
from tests.diagnostics.helpers import patient_of

pytestmark = pytest.mark.django_db

TOO_MANY = MAX_LIMIT + 1


def _page(api, user, url, limit):
    response = api(user).get(url, {"limit": limit})
    assert response.status_code == 200, response.content
    return response.json()


def _the_ceiling_holds(api, user, url):
    body = _page(api, user, url, 1_000_000)
    assert body["count"] >= TOO_MANY
    assert len(body["results"]) == MAX_LIMIT
    assert f"offset={MAX_LIMIT}" in body["next"]
    # A limit under the ceiling is answered as asked.
    assert len(_page(api, user, url, 7)["results"]) == 7


def test_the_scan_list(api, world):
    record = patient_of(world.owner, world.a)
    Scan.objects.bulk_create([
        Scan(hospital=world.a, patient=record, status=ScanStatus.QUEUED, blob_path=f"scans/{n}", blob_sha256="0",
             blob_size=1, content_digest=f"ceiling-{n}", kind="png", width=8, height=8)
        for n in range(TOO_MANY)
    ])
    _the_ceiling_holds(api, world.doctor_a, f"/api/v1/hospitals/{world.a.slug}/scans/")


def test_the_patient_list(api, world):
    Patient.objects.bulk_create([Patient(hospital=world.a, full_name=f"Patient {n}") for n in range(TOO_MANY)])
    _the_ceiling_holds(api, world.doctor_a, f"/api/v1/hospitals/{world.a.slug}/patients/")


def test_the_audit_trail(api, world):
    AuditEvent.objects.bulk_create([
        AuditEvent(hospital_id=world.a.pk, actor_id=world.doctor_a.pk, action="scan.read", object_type="scan",
                   object_id=str(n))
        for n in range(TOO_MANY)
    ])
    _the_ceiling_holds(api, world.admin_a, f"/api/v1/hospitals/{world.a.slug}/audit/")
