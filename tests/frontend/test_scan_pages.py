"""Scan pages: history, upload, result / case viewer, worklist (frontend/views/scans.py)."""

import json
import re

import pytest

from diagnostics.models import Scan
from hospitals.models import AIResultVisibility, AuditEvent
from tests.diagnostics.helpers import finish, patient_of, upload
from tests.diagnostics.samples import jpeg_bytes

pytestmark = pytest.mark.django_db


def _embedded(html: str, element_id: str):
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


@pytest.fixture
def scan_a(world, api):
    """Patient A1's uploaded scan, analysed as glioma (not yet reviewed)."""
    response = upload(api(world.owner), world.a, jpeg_bytes("glioma", 0))
    assert response.status_code == 201, response.content
    scan = Scan.objects.get(pk=response.json()["id"])
    finish(scan, "glioma", 0.93)
    return scan


def test_anonymous_is_sent_to_sign_in_everywhere(client, world, scan_a):
    for url in ("/h/st-anne/scans/", "/h/st-anne/upload/", "/h/st-anne/worklist/", f"/h/st-anne/scans/{scan_a.id}/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_outsider_gets_not_found_for_every_scan_page(client, world, scan_a):
    client.force_login(world.outsider)
    for url in ("/h/st-anne/scans/", "/h/st-anne/upload/", "/h/st-anne/worklist/", f"/h/st-anne/scans/{scan_a.id}/",
                f"/h/north-general/scans/{scan_a.id}/"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Page not found" in response.content.decode()


def test_another_patient_of_the_same_hospital_gets_not_found(client, world, scan_a):
    client.force_login(world.patient_a2)
    assert client.get(f"/h/st-anne/scans/{scan_a.id}/").status_code == 404
    assert str(scan_a.id) not in client.get("/h/st-anne/scans/").content.decode()
    assert client.get("/h/st-anne/scans/not-a-uuid/").status_code == 404


def test_roles_each_have_their_pages(client, world):
    client.force_login(world.doctor_a)
    assert client.get("/h/st-anne/upload/").status_code == 403
    assert client.get("/h/st-anne/scans/").status_code == 403
    client.force_login(world.owner)
    assert client.get("/h/st-anne/worklist/").status_code == 403
    assert client.get("/h/st-anne/").url == "/h/st-anne/scans/"


def test_history_lists_own_scans_without_the_unreviewed_ai_label(client, world, scan_a):
    client.force_login(world.owner)
    html = client.get("/h/st-anne/scans/").content.decode()
    assert f"/h/st-anne/scans/{scan_a.id}/" in html
    assert "Waiting for a doctor" in html
    assert "Glioma" not in html


def test_result_page_withholds_the_ai_result_until_review(client, world, scan_a):
    client.force_login(world.owner)
    html = client.get(f"/h/st-anne/scans/{scan_a.id}/").content.decode()
    data = _embedded(html, "scan-data")
    assert data["label"] is None and data["result"] is None and data["awaiting_review"]
    assert 'id="viewer"' in html


def test_result_page_shows_preliminary_result_where_the_hospital_allows(client, world, scan_a):
    world.a.patients_see_ai_results = AIResultVisibility.IMMEDIATELY
    world.a.save()
    client.force_login(world.owner)
    data = _embedded(client.get(f"/h/st-anne/scans/{scan_a.id}/").content.decode(), "scan-data")
    assert data["label"] == "glioma" and data["preliminary"]
    assert data["result"]["mask_url"].endswith("/mask.png")
    assert data["advice"]["reminder"]


def test_case_viewer_for_doctor_names_the_patient_and_audits_the_read(client, world, scan_a):
    client.force_login(world.doctor_a)
    html = client.get(f"/h/st-anne/scans/{scan_a.id}/").content.decode()
    assert f"Case of {patient_of(world.owner, world.a).full_name}" in html
    assert 'id="review-form"' in html
    data = _embedded(html, "scan-data")
    assert data["result"]["label"] == "glioma" and data["result"]["heatmap_url"]
    assert AuditEvent.objects.filter(actor_id=world.doctor_a.pk, action="scan.view", object_id=str(scan_a.id)).exists()
    assert AuditEvent.objects.filter(actor_id=world.doctor_a.pk, action="patient.read").exists()


def test_admin_sees_the_case_but_cannot_review(client, world, scan_a):
    client.force_login(world.admin_a)
    html = client.get(f"/h/st-anne/scans/{scan_a.id}/").content.decode()
    assert 'id="review-form"' not in html
    assert "Only a doctor of this hospital can confirm" in html


def test_worklist_names_only_this_hospitals_patients(client, world, api, scan_a):
    other = upload(api(world.patient_b), world.b, jpeg_bytes("meningioma", 0))
    assert other.status_code == 201
    client.force_login(world.doctor_a)
    html = client.get("/h/st-anne/worklist/").content.decode()
    names = _embedded(html, "patient-names")
    assert names == {str(scan_a.patient_id): patient_of(world.owner, world.a).full_name}
    assert 'data-ws="/ws/hospitals/st-anne/worklist/"' in html
    assert 'data-api="/api/v1/hospitals/st-anne/scans/"' in html


def test_upload_page_posts_to_the_scan_api(client, world):
    client.force_login(world.owner)
    html = client.get("/h/st-anne/upload/").content.decode()
    assert 'action="/api/v1/hospitals/st-anne/scans/"' in html
    assert '<label for="scan-file">' in html
