"""Every page that lists rows costs the same number of queries for 2 rows as for 12: a hospital holds
tens of thousands of scans and hundreds of members, and a query per row would grow with each page.

(The worklist itself is a page without rows: its lists are the scan API's, tested in
tests/diagnostics/test_api_query_counts.py, and the names of their patients come from worklist/names/.)
"""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from diagnostics.models.registry import ModelVersion
from federation.models import FederatedRound, FederatedRun, RunStatus
from hospitals.audit import record_audit
from hospitals.models import Role
from hospitals.services import add_member, invite_member, remove_member
from tests.diagnostics.helpers import patient_of
from tests.factories import make_hospital, make_member, make_patient, make_scan, make_user
from tests.query_counts import same_for_2_and_12, versions  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def _queries(client, user, url, **params) -> tuple[int, str]:
    client.force_login(user)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200, response.status_code
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return len(captured), content.decode()


@pytest.fixture
def operator(db):
    return make_user("operator@platform.example", is_superuser=True, is_staff=True)


def _scan_links(page):
    return page.count('href="/h/st-anne/scans/') - page.count('href="/h/st-anne/scans/"')


def test_a_patients_my_scans(client, world, versions):
    record = patient_of(world.owner, world.a)

    def add(n):
        for i in range(n):
            make_scan(world.a, record, reviewed_by=world.doctor_a if i % 2 else None, **versions)

    same_for_2_and_12(add, lambda: _queries(client, world.owner, "/h/st-anne/scans/"), _scan_links)


def test_a_patient_records_scans(client, world, versions):
    record = make_patient(world.a)

    def add(n):
        for i in range(n):
            make_scan(world.a, record, reviewed_by=(world.doctor_a, None)[i % 2], reviews=2, **versions)

    same_for_2_and_12(add, lambda: _queries(client, world.doctor_a, f"/h/st-anne/patients/{record.pk}/"),
                       _scan_links)


def test_the_worklists_patient_names(client, world):
    patients = []

    def add(n):
        patients.extend(make_patient(world.a, f"Listed Patient {len(patients) + i}") for i in range(n))

    def read():
        return _queries(client, world.doctor_a, "/h/st-anne/worklist/names/",
                        patient=[str(p.pk) for p in patients])

    same_for_2_and_12(add, read, lambda page: page.count("Listed Patient"))


def test_the_members_page(client, world):
    def add(n):
        for i in range(n):
            member = make_member(world.a, (Role.DOCTOR, Role.PATIENT, Role.ADMIN)[i % 3],
                                 email=f"listed{make_user().pk}@example.org")
            invite_member(hospital=world.a, email=f"invited-{member.email}", role=Role.DOCTOR, actor=world.admin_a)

    def count(page):
        # Each member and each invitation has one form with a revoke or remove button naming it.
        return (page.count('data-confirm="Remove listed') + page.count('data-confirm="Revoke the invitation to')) // 2

    same_for_2_and_12(add, lambda: _queries(client, world.admin_a, "/h/st-anne/members/"), count)


def _audited(world, n):
    """Events of every shape the audit log names differently: patient and staff actors, objects that are
    scans, records and members (one of them gone), and sealed notes."""
    for _ in range(n):
        patient_user = make_member(world.a, Role.PATIENT)
        doctor = make_member(world.a, Role.DOCTOR)
        record = patient_of(patient_user, world.a)
        scan = make_scan(world.a, record)
        record_audit(actor=patient_user, hospital=world.a, action="scan.read", obj=scan)
        record_audit(actor=doctor, hospital=world.a, action="patient.read", obj=record)
        gone = add_member(hospital=world.a, user=make_user(), role=Role.DOCTOR)
        remove_member(hospital=world.a, membership=gone, actor=world.admin_a)
        record_audit(actor=world.admin_a, hospital=world.a, action="scan.delete", object_type="scan",
                     object_id=str(scan.pk), note="Uploaded by mistake.")


def test_the_audit_log_page(client, world):
    def add(n):
        _audited(world, n)

    # One action per event added: the page shows 50 events, and the trail here grows by several per row.
    same_for_2_and_12(add, lambda: _queries(client, world.admin_a, "/h/st-anne/audit/", action="scan.delete"),
                       lambda page: page.count("Uploaded by mistake."))


def test_the_audit_export(client, world):
    def add(n):
        _audited(world, n)

    # Exporting is itself audited, so the export of everything grows by one event each time it is read.
    same_for_2_and_12(add, lambda: _queries(client, world.admin_a, "/h/st-anne/audit/export.csv"),
                       lambda csv: csv.count("Uploaded by mistake."))


def _run(*hospitals, rounds=0):
    run = FederatedRun.objects.create(status=RunStatus.RUNNING, num_rounds=20, started_at=timezone.now())
    run.hospitals.set(hospitals)
    _rounds(run, rounds)
    return run


def _rounds(run, n):
    first = run.rounds.count() + 1
    for number in range(first, first + n):
        FederatedRound.objects.create(run=run, number=number, started_at=timezone.now(), finished_at=timezone.now(),
                                      nodes=[{"hospital": h.slug, "cases": 10} for h in run.hospitals.all()])


def test_the_federation_dashboard(client, world):
    def add(n):
        for _ in range(n):
            _run(world.a, world.b, make_hospital(), rounds=2)
            partner = make_hospital()
            partner.federation_opt_in = True
            partner.save()

    same_for_2_and_12(add, lambda: _queries(client, world.admin_a, "/h/st-anne/federation/"),
                       lambda page: page.count('href="/h/st-anne/federation/runs/'))


@pytest.mark.parametrize("watcher", ["operator", "admin"])
def test_a_run_page(client, world, operator, watcher):
    run = _run(world.a, world.b)
    user, url = ((operator, f"/operator/federation/runs/{run.pk}/") if watcher == "operator"
                 else (world.admin_a, f"/h/st-anne/federation/runs/{run.pk}/"))

    def add(n):
        run.hospitals.add(*[make_hospital(name=f"Listed Hospital {make_user().pk}") for _ in range(n)])
        _rounds(run, n)

    same_for_2_and_12(add, lambda: _queries(client, user, url), lambda page: page.count('"number": '))


def test_the_operators_federation_page(client, world, operator):
    def add(n):
        for i in range(n):
            _run(world.a, make_hospital(), rounds=2)
            ModelVersion.objects.create(task=("classify", "segment")[i % 2], version=f"listed-{make_user().pk}",
                                        artifact_path="v.json", artifact_sha256="0", metrics={"macro_f1": 0.5})

    same_for_2_and_12(add, lambda: _queries(client, operator, "/operator/federation/"),
                       lambda page: page.count('href="/operator/federation/runs/'))


def _listed_versions(page):
    return len(set(re.findall(r"listed-\d+", page)))


def test_the_operators_model_versions(client, world, operator):
    ModelVersion.objects.create(task="classify", version="serving", artifact_path="v.json", artifact_sha256="0",
                                metrics={"macro_f1": 0.9}, status="active", activated_at=timezone.now())

    def add(n):
        for i in range(n):
            ModelVersion.objects.create(task=("classify", "segment")[i % 2], version=f"listed-{make_user().pk}",
                                        artifact_path="v.json", artifact_sha256="0", metrics={"macro_f1": 0.5})

    same_for_2_and_12(add, lambda: _queries(client, operator, "/operator/federation/"), _listed_versions)


def test_a_hospital_admins_model_versions(client, world):
    def add(n):
        for i in range(n):
            ModelVersion.objects.create(task=("classify", "segment")[i % 2], version=f"listed-{make_user().pk}",
                                        artifact_path="v.json", artifact_sha256="0", metrics={"macro_f1": 0.5})

    same_for_2_and_12(add, lambda: _queries(client, world.admin_a, "/h/st-anne/federation/"), _listed_versions)


def test_the_operators_hospitals_page(client, world, operator):
    def add(n):
        for i in range(n):
            hospital = make_hospital()
            if i % 2:
                make_member(hospital, Role.ADMIN)
            else:  # no admin yet: the page shows the invitation that should make one
                invite_member(hospital=hospital, email=f"first{make_user().pk}@example.org", role=Role.ADMIN,
                              actor=operator)

    same_for_2_and_12(add, lambda: _queries(client, operator, "/operator/hospitals/"),
                       lambda page: page.count('<td data-label="Hospital">'))


def test_the_hospital_chooser(client, world):
    add_member(hospital=make_hospital(), user=world.doctor_a, role=Role.DOCTOR)  # one hospital alone: no chooser

    def add(n):
        for i in range(n):
            add_member(hospital=make_hospital(), user=world.doctor_a, role=(Role.DOCTOR, Role.ADMIN)[i % 2])

    # The chooser lists the doctor's hospitals; the header's switcher lists them again.
    same_for_2_and_12(add, lambda: _queries(client, world.doctor_a, "/"),
                       lambda page: len(set(re.findall(r'href="/h/(hospital-\d+)/"', page))))


def test_the_audit_export_streams_the_trail_a_batch_at_a_time(client, world, monkeypatch):
    """A hospital's trail runs to millions of events: the export reads them through a database cursor, a
    batch at a time, and writes each batch out before it reads the next, instead of holding the table."""
    import hospitals.audit

    monkeypatch.setattr(hospitals.audit, "EXPORT_BATCH", 5)
    for i in range(12):
        record_audit(actor=world.patient_a if i % 2 else world.doctor_a, hospital=world.a, action="scan.read",
                     object_type="scan", object_id=str(i))
    client.force_login(world.admin_a)
    response = client.get("/h/st-anne/audit/export.csv", {"action": "scan.read"})
    assert response.streaming
    chunks = iter(response.streaming_content)
    with CaptureQueriesContext(connection) as first_batch:
        header_and_first_batch = [next(chunks) for _ in range(1 + 5)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_cursors")
        open_cursors = cursor.fetchone()[0]
    assert open_cursors == 1, "the export's cursor is open while the file is being written"
    # The first batch's patient actors were looked up for it alone: the rest were not read yet.
    assert sum("hospitals_membership" in q["sql"] for q in first_batch.captured_queries) == 1
    rest = list(chunks)
    assert len(header_and_first_batch) + len(rest) == 1 + 12
    assert all(line.count(b"scan.read") == 1 for line in header_and_first_batch[1:] + rest)
