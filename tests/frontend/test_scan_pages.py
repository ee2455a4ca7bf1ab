"""Scan pages: history, upload, result / case viewer, worklist (frontend/views/scans.py)."""

import json
import re
import uuid

import pytest

from diagnostics.models import Scan
from frontend.views import scans as scan_pages
from frontend.views.scans import WORKLIST_NAMES_MAX
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
    # The list words the state as the scan's own page does, not as the database stores it.
    assert '<span class="badge done">Analysed</span>' in html and ">Done<" not in html


def test_history_pages_through_own_scans_newest_first(client, world, api, monkeypatch):
    # A small page, so three uploads make two pages; the paging is the same at the real size.
    monkeypatch.setattr(scan_pages, "HISTORY_PAGE_SIZE", 2)
    own = [upload(api(world.owner), world.a, jpeg_bytes("glioma", n)).json()["id"] for n in range(3)]
    theirs = upload(api(world.patient_a2), world.a, jpeg_bytes("notumor", 0)).json()["id"]
    client.force_login(world.owner)
    first = client.get("/h/st-anne/scans/").content.decode()
    assert re.findall(r'href="/h/st-anne/scans/([0-9a-f-]+)/"', first) == [own[2], own[1]]
    assert 'href="?page=2"' in first and "Page 1 of 2" in first
    second = client.get("/h/st-anne/scans/?page=2").content.decode()
    assert re.findall(r'href="/h/st-anne/scans/([0-9a-f-]+)/"', second) == [own[0]]
    assert theirs not in first + second
    # A page number past the end shows the last page, not an error.
    assert own[0] in client.get("/h/st-anne/scans/?page=9").content.decode()


def test_history_reads_the_same_number_of_queries_for_one_scan_as_for_many(client, world, api):
    """Each row shows its classifier and segmenter versions; they are joined, not fetched row by row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from diagnostics.models import Diagnosis, ModelVersion

    world.a.patients_see_ai_results = AIResultVisibility.IMMEDIATELY
    world.a.save()
    classifier = ModelVersion.objects.create(task="classify", version="c1", artifact_path="c.json", artifact_sha256="0")
    segmenter = ModelVersion.objects.create(task="segment", version="s1", artifact_path="s.json", artifact_sha256="0")
    client.force_login(world.owner)

    def queries_for_history():
        Diagnosis.objects.update(model_version=classifier, segmenter_version=segmenter)
        with CaptureQueriesContext(connection) as captured:
            html = client.get("/h/st-anne/scans/").content.decode()
        return len(captured), html

    def add_scan(n):
        finish(Scan.objects.get(pk=upload(api(world.owner), world.a, jpeg_bytes("glioma", n)).json()["id"]), "glioma")

    add_scan(0)
    one, _ = queries_for_history()
    for n in range(1, 4):
        add_scan(n)
    many, html = queries_for_history()
    assert len(re.findall(r'href="/h/st-anne/scans/([0-9a-f-]+)/"', html)) == 4
    assert many == one, f"{one} queries for one scan, {many} for four"


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


def test_worklist_page_decrypts_no_names_and_points_at_the_apis(client, world, scan_a):
    client.force_login(world.doctor_a)
    before = AuditEvent.objects.count()
    html = client.get("/h/st-anne/worklist/").content.decode()
    assert patient_of(world.owner, world.a).full_name not in html and 'id="patient-names"' not in html
    assert AuditEvent.objects.count() == before
    assert 'data-ws="/ws/hospitals/st-anne/worklist/"' in html
    assert 'data-api="/api/v1/hospitals/st-anne/scans/"' in html
    assert 'data-names="/h/st-anne/worklist/names/"' in html and 'data-page-size="50"' in html
    assert '<label for="filter-mrn">Record number</label>' in html


def test_worklist_names_are_only_those_asked_for_and_only_this_hospitals(client, world, api, scan_a):
    other = upload(api(world.patient_b), world.b, jpeg_bytes("meningioma", 0))
    assert other.status_code == 201
    in_b = patient_of(world.patient_b, world.b)
    unasked = patient_of(world.patient_a2, world.a)
    client.force_login(world.doctor_a)
    answer = client.get("/h/st-anne/worklist/names/", {"patient": [str(scan_a.patient_id), str(in_b.pk)]})
    assert answer.status_code == 200
    assert answer.json() == {"names": {str(scan_a.patient_id): patient_of(world.owner, world.a).full_name}}
    assert unasked.full_name not in answer.content.decode()
    event = AuditEvent.objects.filter(action="patient.list", actor_id=world.doctor_a.pk).latest("at")
    assert event.detail == "worklist names: 1" and event.hospital_id == world.a.pk


def test_worklist_names_refuse_bad_ids_and_big_batches_and_keep_others_out(client, world, scan_a):
    url = "/h/st-anne/worklist/names/"
    client.force_login(world.doctor_a)
    bad = client.get(url, {"patient": "not-an-id"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_id"
    many = client.get(url, {"patient": [str(uuid.uuid4()) for _ in range(WORKLIST_NAMES_MAX + 1)]})
    assert many.status_code == 400 and many.json()["error"] == "too_many"
    asked = {"patient": str(scan_a.patient_id)}
    client.force_login(world.owner)
    assert client.get(url, asked).status_code == 403
    client.force_login(world.admin_b)
    assert client.get(url, asked).status_code == 404
    client.force_login(world.admin_a)
    assert str(scan_a.patient_id) in client.get(url, asked).json()["names"]


def test_upload_page_posts_to_the_scan_api(client, world):
    client.force_login(world.owner)
    html = client.get("/h/st-anne/upload/").content.decode()
    assert 'action="/api/v1/hospitals/st-anne/scans/"' in html
    assert '<label for="scan-file">' in html


@pytest.fixture
def volume_a(world, api):
    """Patient A1's five-slice NIfTI volume, analysed as glioma on slice 4 (index 3), found on slices 3-4."""
    from tests.diagnostics.samples import nifti_bytes

    response = upload(api(world.owner), world.a, nifti_bytes("glioma", 5), name="head.nii")
    assert response.status_code == 201, response.content
    scan = Scan.objects.get(pk=response.json()["id"])
    finish(scan, "glioma", 0.88, slice_index=3, tumour_slices=(2, 3))
    return scan


def test_case_viewer_of_a_volume_offers_every_slice_and_the_softwares_reading_of_each(client, world, volume_a):
    client.force_login(world.doctor_a)
    html = client.get(f"/h/st-anne/scans/{volume_a.id}/").content.decode()
    assert 'id="slice-nav"' in html and 'type="range" id="slice" min="1" max="5"' in html
    data = _embedded(html, "scan-data")
    assert data["slice_count"] == 5 and data["result"]["slice_index"] == 3
    assert [entry["slice"] for entry in data["result"]["per_slice"] if entry["label"] != "notumor"] == [2, 3]
    # The slider loads any slice through the image API.
    assert client.get(f"{data['image_url']}?slice=0")["Content-Type"] == "image/png"


def test_patient_browses_the_slices_of_their_volume_without_the_softwares_reading(client, world, volume_a):
    client.force_login(world.owner)
    html = client.get(f"/h/st-anne/scans/{volume_a.id}/").content.decode()
    assert 'id="slice-nav"' in html
    data = _embedded(html, "scan-data")
    # Before review nothing tells the patient which slice was analysed or where a tumour was found.
    assert data["result"] is None and "per_slice" not in json.dumps(data)
    assert client.get(f"{data['image_url']}?slice=4").status_code == 200


def test_a_single_image_has_no_slice_controls(client, world, scan_a):
    client.force_login(world.doctor_a)
    assert 'id="slice-nav"' not in client.get(f"/h/st-anne/scans/{scan_a.id}/").content.decode()


def _title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1)


def test_page_titles_tell_cases_apart_by_hospital_and_day_never_by_patient(client, world, api, scan_a):
    """A title shows in the task bar and stays in the browser's history: it names no patient."""
    other = Scan.objects.get(pk=upload(api(world.patient_a2), world.a, jpeg_bytes("meningioma", 9)).json()["id"])
    Scan.objects.filter(pk=other.pk).update(created_at=scan_a.created_at.replace(year=2025))
    client.force_login(world.doctor_a)
    first, second = (_title(client.get(f"/h/st-anne/scans/{s.id}/").content.decode()) for s in (scan_a, other))
    assert first != second and "St Anne&#x27;s" in first and first.startswith("Case of ")
    name = patient_of(world.owner, world.a).full_name
    assert name not in first
    client.force_login(world.owner)
    mine = _title(client.get(f"/h/st-anne/scans/{scan_a.id}/").content.decode())
    assert mine.startswith("Your scan of ") and "St Anne&#x27;s" in mine and name not in mine
    assert "St Anne&#x27;s" in _title(client.get("/h/st-anne/scans/").content.decode())
