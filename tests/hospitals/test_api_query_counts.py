"""The hospitals API's lists cost the same number of queries for 2 rows as for 12: members, patient
records, invitations and the audit trail (whose events name their actors and objects)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hospitals.audit import record_audit
from hospitals.models import Role
from hospitals.services import invite_member
from tests.diagnostics.helpers import patient_of
from tests.factories import make_member, make_patient, make_scan

pytestmark = pytest.mark.django_db


def _queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(captured), response.json()


def _same_for_2_and_12(add_rows, read):
    before = read()[1]["count"]
    add_rows(2)
    few, answer = read()
    assert answer["count"] == before + 2 and len(answer["results"]) == answer["count"]
    add_rows(10)
    many, answer = read()
    assert answer["count"] == before + 12 and len(answer["results"]) == answer["count"]
    assert many == few, f"{few} queries for {before + 2} rows, {many} for {before + 12}"


@pytest.mark.parametrize("role", [Role.PATIENT, Role.DOCTOR])
def test_members(world, api, role):
    client = api(world.admin_a)
    _same_for_2_and_12(lambda n: [make_member(world.a, role) for _ in range(n)],
                       lambda: _queries(client, "/api/v1/hospitals/st-anne/members/"))


def test_patient_records(world, api):
    client = api(world.doctor_a)
    _same_for_2_and_12(lambda n: [make_patient(world.a, full_name=f"Patient {i}") for i in range(n)],
                       lambda: _queries(client, "/api/v1/hospitals/st-anne/patients/"))


def test_invitations(world, api):
    client = api(world.admin_a)
    sent = iter(range(100))

    def add(n):
        for _ in range(n):
            invite_member(hospital=world.a, email=f"new{next(sent)}@st-anne.example", role=Role.DOCTOR,
                          actor=world.admin_a)

    _same_for_2_and_12(add, lambda: _queries(client, "/api/v1/hospitals/st-anne/invitations/"))


def test_the_audit_trail(world, api):
    client = api(world.admin_a)

    def add(n):
        for _ in range(n):
            patient = make_member(world.a, Role.PATIENT)
            scan = make_scan(world.a, patient_of(patient, world.a))
            record_audit(actor=patient, hospital=world.a, action="scan.read", obj=scan)

    # Reading the trail is not itself audited, so the count grows only by the events added.
    _same_for_2_and_12(add, lambda: _queries(client, "/api/v1/hospitals/st-anne/audit/?action=scan.read"))
