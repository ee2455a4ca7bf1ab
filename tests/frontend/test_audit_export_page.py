"""The audit log as CSV (/h/<slug>/audit/export.csv) and the log's date filters (frontend/views/audit.py)."""

import csv
import io
from datetime import datetime

import pytest
from django.utils import timezone

from hospitals.audit import AUDIT_CSV_COLUMNS, record_audit
from hospitals.models import AuditEvent

pytestmark = pytest.mark.django_db

EXPORT = "/h/st-anne/audit/export.csv"


def recorded_on(monkeypatch, day: str, **fields):
    """An audit event written as if on ``day`` at noon, site time (the trail itself can only append)."""
    moment = timezone.make_aware(datetime.fromisoformat(f"{day}T12:00:00"))
    with monkeypatch.context() as patched:
        patched.setattr(timezone, "now", lambda: moment)
        return record_audit(hospital=fields.pop("hospital"), **fields)


def rows_of(response):
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def trail(world, monkeypatch):
    recorded_on(monkeypatch, "2026-03-01", actor=world.doctor_a, hospital=world.a, action="scan.view",
                object_type="scan", object_id="march-scan")
    recorded_on(monkeypatch, "2026-04-10", actor=world.doctor_a, hospital=world.a, action="patient.read",
                object_type="patient", object_id="april-patient")
    recorded_on(monkeypatch, "2026-04-11", actor=world.admin_a, hospital=world.a, action="scan.delete",
                object_type="scan", object_id="april-scan", detail="=HYPERLINK(\"http://evil.example\")",
                note="+cmd|' /C calc'!A0")
    recorded_on(monkeypatch, "2026-04-10", actor=world.doctor_b, hospital=world.b, action="patient.read",
                object_type="patient", object_id="north-patient")


def test_only_this_hospitals_admins_export(client, world):
    assert client.get(EXPORT)["Location"].startswith("/accounts/login/")
    client.force_login(world.admin_b)
    assert client.get(EXPORT).status_code == 404
    for member in (world.doctor_a, world.patient_a):
        client.force_login(member)
        assert client.get(EXPORT).status_code == 403
    assert not AuditEvent.objects.filter(action="audit.export").exists()


def test_the_export_is_this_hospitals_trail_newest_first_and_is_audited(client, world, trail):
    client.force_login(world.admin_a)
    response = client.get(EXPORT)
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-st-anne-')
    assert response["Cache-Control"] == "no-store"
    header, *rows = rows_of(response)
    assert tuple(header) == AUDIT_CSV_COLUMNS
    object_ids = [row[5] for row in rows]
    assert "north-patient" not in object_ids
    assert object_ids.index("april-scan") < object_ids.index("april-patient") < object_ids.index("march-scan")
    assert "audit.export" not in [row[3] for row in rows]  # the file ends where it was asked for
    export = AuditEvent.objects.get(action="audit.export")
    assert export.actor_id == world.admin_a.pk and export.detail == f"{len(rows)} events"
    assert "audit.export" in [row[3] for row in rows_of(client.get(EXPORT))[1:]]  # and the next one lists it


def test_a_cell_a_spreadsheet_would_run_is_written_as_text(client, world, trail):
    client.force_login(world.admin_a)
    [deleted] = [row for row in rows_of(client.get(EXPORT, {"action": "scan.delete"}))[1:]]
    assert deleted[7] == "'=HYPERLINK(\"http://evil.example\")"
    assert deleted[8] == "'+cmd|' /C calc'!A0"


def test_the_export_keeps_the_pages_filters(client, world, trail):
    client.force_login(world.admin_a)
    rows = rows_of(client.get(EXPORT, {"since": "2026-04-10", "until": "2026-04-10"}))[1:]
    assert [row[5] for row in rows] == ["april-patient"]
    rows = rows_of(client.get(EXPORT, {"action": "scan.view", "until": "2026-04-30"}))[1:]
    assert [row[5] for row in rows] == ["march-scan"]
    assert AuditEvent.objects.filter(action="audit.export").first().detail == (  # newest first
        "1 events; action scan.view, until 2026-04-30")


@pytest.mark.parametrize("params, sentence", [
    ({"since": "2026-04-31"}, "Enter a valid date"),
    ({"since": "2026-04-11", "until": "2026-04-10"}, "is before"),
])
def test_bad_dates_are_refused_with_a_sentence(client, world, trail, params, sentence):
    client.force_login(world.admin_a)
    response = client.get(EXPORT, params)
    assert response.status_code == 400 and sentence in response.content.decode()
    page = client.get("/h/st-anne/audit/", params)
    assert page.status_code == 400 and sentence in page.content.decode()
    assert "export.csv" not in page.content.decode() and "No events match" not in page.content.decode()
    assert not AuditEvent.objects.filter(action="audit.export").exists()


def test_the_page_filters_by_day_and_offers_those_events_for_download(client, world, trail):
    client.force_login(world.admin_a)
    html = client.get("/h/st-anne/audit/", {"since": "2026-04-11", "until": "2026-04-11"}).content.decode()
    rows = html.split("<tbody>")[1].split("</tbody>")[0]
    assert "april-scan" in rows and "april-patient" not in rows and "march-scan" not in rows
    assert 'href="/h/st-anne/audit/export.csv?since=2026-04-11&amp;until=2026-04-11"' in html
    assert "Download these events (CSV)" in html


def test_the_last_day_there_is_ends_nothing(client, world, trail):
    client.force_login(world.admin_a)
    page = client.get("/h/st-anne/audit/", {"until": "9999-12-31"})
    assert page.status_code == 200 and "april-scan" in page.content.decode()
    rows = rows_of(client.get(EXPORT, {"action": "scan.delete", "until": "9999-12-31"}))[1:]
    assert [row[5] for row in rows] == ["april-scan"]


def test_a_patient_is_named_by_their_record_never_by_email(client, world):
    from hospitals.models import Patient

    record = Patient.objects.get(hospital=world.a, user=world.owner)
    record_audit(actor=world.owner, hospital=world.a, action="scan.upload", object_type="scan", object_id="s1")
    # A row from before patients' emails were kept out of the trail.
    AuditEvent.objects.create(hospital_id=world.a.id, actor_id=world.owner.pk, actor_label=world.owner.email,
                              action="scan.upload", object_type="scan", object_id="s0")
    client.force_login(world.admin_a)
    response = client.get(EXPORT, {"action": "scan.upload"})
    rows = rows_of(response)[1:]
    assert [row[2] for row in rows] == [f"patient {record.pk}"] * 2
    assert world.owner.email not in "".join(",".join(row) for row in rows)
