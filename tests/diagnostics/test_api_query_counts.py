"""The scan API's lists cost the same number of queries for 2 rows as for 12: staff's list (the worklist's
two lists are this endpoint), a patient's own list, the record-number search, and a scan's review history."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hospitals.services import update_patient
from tests.diagnostics.helpers import patient_of
from tests.factories import make_scan
from tests.query_counts import same_for_2_and_12, versions  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def _queries(client, method, url, **kwargs):
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(url, **kwargs)
    assert response.status_code == 200, response.content
    return len(captured), response.json()


@pytest.mark.parametrize("review_state", ["unreviewed", "reviewed"])
def test_staffs_scan_list(world, api, versions, review_state):
    owner = patient_of(world.owner, world.a)
    reviewer = world.doctor_a if review_state == "reviewed" else None
    client = api(world.doctor_a)

    def add(n):
        for _ in range(n):
            make_scan(world.a, owner, reviewed_by=reviewer, **versions)

    url = f"/api/v1/hospitals/st-anne/scans/?review_state={review_state}"
    same_for_2_and_12(add, lambda: _queries(client, "get", url),
                       lambda answer: answer["count"] if len(answer["results"]) == answer["count"] else -1)


def test_a_patients_own_scan_list(world, api, versions):
    owner = patient_of(world.owner, world.a)
    client = api(world.owner)

    def add(n):
        for _ in range(n):
            make_scan(world.a, owner, reviewed_by=world.doctor_a, **versions)

    same_for_2_and_12(add, lambda: _queries(client, "get", "/api/v1/hospitals/st-anne/scans/"),
                       lambda answer: len(answer["results"]))


def test_the_record_number_search(world, api, versions):
    owner = patient_of(world.owner, world.a)
    update_patient(hospital=world.a, patient=owner, actor=world.admin_a, medical_record_number="RN-77")
    client = api(world.doctor_a)

    def add(n):
        for _ in range(n):
            make_scan(world.a, owner, **versions)

    same_for_2_and_12(add, lambda: _queries(client, "post", "/api/v1/hospitals/st-anne/scans/search/",
                                             data={"mrn": "RN-77"}, format="json"),
                       lambda answer: len(answer["results"]))


def test_a_scans_review_history(world, api, versions):
    owner = patient_of(world.owner, world.a)
    scan = make_scan(world.a, owner, reviewed_by=world.doctor_a, reviews=1, **versions)
    client = api(world.doctor_a)

    def add(n):
        from diagnostics.models.scans import Review

        for _ in range(n):
            Review.objects.create(hospital=world.a, scan=scan, reviewer=world.doctor_a2, previous_label="glioma",
                                  label="glioma", notes="Agreed.")

    same_for_2_and_12(add, lambda: _queries(client, "get", f"/api/v1/hospitals/st-anne/scans/{scan.pk}/"),
                       lambda answer: len(answer["reviews"]))
