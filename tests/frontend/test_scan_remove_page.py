"""Removing a scan from its page (POST /h/<slug>/scans/<id>/remove/, frontend/views/scans.py)."""

import pytest

from diagnostics.models import Scan
from tests.diagnostics.helpers import finish, upload
from tests.diagnostics.samples import jpeg_bytes

pytestmark = pytest.mark.django_db

REMOVE_FORM = "/remove/"


@pytest.fixture
def scan_a(world, api):
    """Patient A1's uploaded scan, analysed (not yet reviewed)."""
    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, jpeg_bytes("glioma", 2)).json()["id"])
    finish(scan, "glioma", 0.9)
    return scan


def page(scan):
    return f"/h/st-anne/scans/{scan.id}/"


def test_the_owner_is_offered_removal_until_a_doctor_reviews(client, world, api, scan_a):
    client.force_login(world.owner)
    assert page(scan_a) + "remove/" in client.get(page(scan_a)).content.decode()
    reviewed = api(world.colleague).post(f"/api/v1/hospitals/st-anne/scans/{scan_a.id}/review/", {"label": "glioma"},
                                         format="json")
    assert reviewed.status_code == 201
    assert REMOVE_FORM not in client.get(page(scan_a)).content.decode()


def test_the_owner_removes_their_scan_and_lands_on_their_list(client, world, scan_a,
                                                             django_capture_on_commit_callbacks):
    client.force_login(world.owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(page(scan_a) + "remove/", follow=True)
    assert response.redirect_chain[-1] == ("/h/st-anne/scans/", 302)
    assert "has been removed" in response.content.decode()
    assert not Scan.objects.filter(pk=scan_a.pk).exists()
    assert client.get(page(scan_a)).status_code == 404


def test_only_the_admin_of_the_staff_is_offered_removal(client, world, scan_a):
    client.force_login(world.colleague)
    assert REMOVE_FORM not in client.get(page(scan_a)).content.decode()
    client.force_login(world.admin_a)
    html = client.get(page(scan_a)).content.decode()
    assert page(scan_a) + "remove/" in html and 'name="reason"' in html


def test_an_admin_without_a_reason_is_sent_back_with_the_refusal(client, world, scan_a):
    client.force_login(world.admin_a)
    response = client.post(page(scan_a) + "remove/", {"reason": ""}, follow=True)
    assert response.redirect_chain[-1] == (page(scan_a), 302)
    assert "Say why the scan is removed" in response.content.decode()
    assert Scan.objects.filter(pk=scan_a.pk).exists()


def test_an_admin_removes_with_a_reason_and_lands_on_the_worklist(client, world, scan_a,
                                                                 django_capture_on_commit_callbacks):
    client.force_login(world.admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(page(scan_a) + "remove/", {"reason": "Uploaded for the wrong patient"})
    assert response.status_code == 302 and response["Location"] == "/h/st-anne/worklist/"
    assert not Scan.objects.filter(pk=scan_a.pk).exists()
    audit_log = client.get("/h/st-anne/audit/").content.decode()
    assert "Reason given: “Uploaded for the wrong patient”" in audit_log


@pytest.mark.parametrize("who, status", [("colleague", 403), ("outsider", 404), ("patient_a2", 404)])
def test_no_one_else_removes_it(client, world, scan_a, who, status):
    client.force_login(getattr(world, who))
    assert client.post(page(scan_a) + "remove/", {"reason": "wrong patient"}).status_code == status
    assert Scan.objects.filter(pk=scan_a.pk).exists()


def test_removal_is_a_post_only(client, world, scan_a):
    client.force_login(world.owner)
    assert client.get(page(scan_a) + "remove/").status_code == 405
    assert Scan.objects.filter(pk=scan_a.pk).exists()
