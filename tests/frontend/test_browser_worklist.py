"""The worklist in a browser (frontend/static/frontend/js/worklist.js): pages through more than one API page,
finds a patient by record number, and shows the names of the rows on screen only."""

import pytest

from diagnostics.models import Scan
from frontend.views.scans import WORKLIST_PAGE_SIZE
from hospitals.models import AuditEvent
from hospitals.services import update_patient
from tests.diagnostics.helpers import finish, patient_of, upload
from tests.diagnostics.samples import dicom_bytes, jpeg_bytes
from tests.factories import PASSWORD
from tests.frontend.conftest import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_leftover_tasks")]



@pytest.fixture
def crowded_worklist(live, world, api, settings):
    """More scans awaiting review than one page holds: all of patient A1 but one, of patient A2, whose
    DICOM file names another patient ID than A2's record number."""
    settings.UPLOAD_MAX_WAITING = 0  # no worker analyses them: all wait, past one account's usual limit
    for index in range(WORKLIST_PAGE_SIZE + 2):
        assert upload(api(world.owner), world.a, jpeg_bytes("glioma", index)).status_code == 201
    searched = patient_of(world.patient_a2, world.a)
    update_patient(hospital=world.a, patient=searched, actor=world.admin_a, medical_record_number="RN-2044")
    assert upload(api(world.patient_a2), world.a, dicom_bytes(), name="scan.dcm").status_code == 201
    return searched


def test_worklist_shows_more_on_request_and_finds_a_record_number(world, crowded_worklist, new_page):
    total = WORKLIST_PAGE_SIZE + 3
    assert Scan.objects.filter(hospital=world.a).count() == total
    doctor = new_page()
    sign_in(doctor, world.doctor_a, PASSWORD)
    pending = doctor.locator("#pending")
    more = pending.get_by_role("button", name="Show 3 more")
    more.wait_for()
    assert pending.locator("tbody tr").count() == WORKLIST_PAGE_SIZE
    assert f"{WORKLIST_PAGE_SIZE} of {total} shown" in pending.inner_text()
    assert doctor.locator("#pending-count").inner_text() == f"({total})"
    owner_name = patient_of(world.owner, world.a).full_name
    assert pending.get_by_role("link", name=owner_name).count() >= WORKLIST_PAGE_SIZE - 1
    # A screen reader's list of links tells one patient's scans apart by their upload time.
    uploaded = pending.locator('tbody tr td[data-label="Uploaded"]').first.inner_text()
    assert pending.get_by_role("link", name=f"{owner_name}, scan uploaded {uploaded}", exact=True).count() >= 1
    more.click()
    pending.locator(f"tbody tr:nth-child({total})").wait_for()
    assert pending.locator("tbody tr").count() == total and more.count() == 0
    assert pending.get_by_role("link", name=crowded_worklist.full_name).count() == 1
    # Only A2's row asks the doctor to check whose scan it is.
    flagged = pending.locator("tbody tr", has=doctor.locator(".badge.identity"))
    assert flagged.count() == 1 and flagged.get_by_role("link", name=crowded_worklist.full_name).count() == 1
    # Names were read for the rows shown, in batches, never one request per row.
    assert AuditEvent.objects.filter(hospital_id=world.a.pk, action="patient.list",
                                     actor_id=world.doctor_a.pk).count() <= 2
    screenshot(doctor, "worklist-show-more")

    requested = []
    doctor.on("request", lambda request: requested.append(request.url))
    doctor.get_by_label("Record number").fill("rn-2044")
    # Leaving the field is no search (its change event would search, and audit the look-up, a second
    # time beside Find). A fresh first page of the pending list would ask for limit=50; a live reload
    # asks for as many rows as are shown (53).
    doctor.get_by_label("Record number").press("Tab")
    doctor.wait_for_timeout(700)
    fresh = f"review_state=unreviewed&limit={WORKLIST_PAGE_SIZE}&offset=0"
    assert not [url for url in requested if "/scans/search/" in url and fresh in url], requested
    doctor.get_by_label("Record number").press("Enter")
    pending.locator("tbody tr").nth(1).wait_for(state="detached")
    assert pending.locator("tbody tr").count() == 1
    assert pending.get_by_role("link", name=crowded_worklist.full_name).count() == 1
    # The record number names a patient: it went in a request body, never in a URL logs would keep.
    assert any("/scans/search/" in url for url in requested)
    assert len([url for url in requested if "/scans/search/" in url and fresh in url]) == 1, requested
    assert not any("2044" in url for url in [*requested, doctor.url])
    doctor.get_by_label("Record number").fill("RN-0000")
    doctor.get_by_label("Record number").press("Enter")
    pending.get_by_text("No scans here for this record number.").wait_for()


@pytest.fixture
def reviewed_scan(live, world, api):
    """A scan the software read as glioma (91 %) and a doctor as meningioma."""
    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, jpeg_bytes("glioma", 3)).json()["id"])
    finish(scan, "glioma", 0.91)
    response = api(world.doctor_a2).post(f"/api/v1/hospitals/st-anne/scans/{scan.id}/review/", {"label": "meningioma"},
                                         format="json")
    assert response.status_code == 201
    return scan


def test_rows_shown_on_request_stay_when_a_live_event_reloads_the_lists_meanwhile(world, crowded_worklist, new_page,
                                                                                 api):
    """A live event's reload waits for a "Show more" under way, then asks for its rows too: side by side,
    whichever answered last undid the other, and the rows the doctor asked for vanished."""
    import time

    from tests.frontend.conftest import in_other_thread

    total = WORKLIST_PAGE_SIZE + 3
    doctor = new_page()
    sign_in(doctor, world.doctor_a, PASSWORD)
    pending = doctor.locator("#pending")
    doctor.get_by_text("Live updates on").wait_for()
    held, reloads_while_held = [], []
    doctor.on("request", lambda request: reloads_while_held.append(request.url)
              if held and "review_state=unreviewed" in request.url and "offset=0" in request.url else None)
    doctor.route(lambda url: f"offset={WORKLIST_PAGE_SIZE}&" in url or url.endswith(f"offset={WORKLIST_PAGE_SIZE}"),
                 lambda route: held.append(route))
    pending.get_by_role("button", name="Show 3 more").click()
    deadline = time.monotonic() + 20
    while not held and time.monotonic() < deadline:
        doctor.wait_for_timeout(50)
    assert held, "the page did not ask for more rows"
    # A new upload: a live event, whose reload starts half a second later unless it waits its turn.
    in_other_thread(lambda: upload(api(world.owner), world.a, jpeg_bytes("meningioma", 7)))
    doctor.wait_for_timeout(2000)
    assert reloads_while_held == []
    for route in held:
        route.continue_()
    # The rows asked for, then the event's reload of as many rows: 53 shown of the 54 now waiting.
    pending.get_by_role("button", name="Show 1 more").wait_for()
    assert pending.locator("tbody tr").count() == total


def test_a_reviewed_row_names_the_softwares_class_beside_its_confidence_and_times_agree(world, reviewed_scan,
                                                                                       new_page):
    # A browser in another time zone and locale than the site's.
    doctor = new_page(timezone_id="America/New_York", locale="en-US")
    sign_in(doctor, world.doctor_a, PASSWORD)
    row = doctor.locator("#reviewed tbody tr").first
    row.wait_for()
    assert "Meningioma" in row.inner_text()
    assert row.locator('td[data-label="AI confidence"]').inner_text() == "Glioma 91%"
    listed_at = row.locator('td[data-label="Uploaded"]').inner_text()

    row.get_by_role("link").click()
    doctor.locator("#reviews li").first.wait_for()
    uploaded = doctor.get_by_text("Uploaded ").first.inner_text()
    assert listed_at in uploaded  # the worklist and the server-written page give the same time
    reviewed_at = doctor.locator("#reviews li").first.inner_text().split(" by ")[0]
    assert reviewed_at.endswith(reviewed_scan.reviews.get().created_at.strftime("%H:%M"))  # site time (UTC)
    assert "Times are in UTC." in doctor.locator(".site-footer").inner_text()


def test_a_live_reload_keeps_every_row_shown_past_one_api_answer(world, live, new_page):
    """The live reload asks again for every row on screen; past the API's ceiling (neurofed/pagination.py) it
    asks in turns, so a doctor ten "Show more" clicks down does not see the list shrink under them."""
    from diagnostics import services
    from neurofed.pagination import MAX_LIMIT
    from tests.factories import make_scan
    from tests.frontend.conftest import in_other_thread

    owner = patient_of(world.owner, world.a)
    total = MAX_LIMIT + 2 * WORKLIST_PAGE_SIZE + 10
    scans = [make_scan(world.a, owner) for _ in range(total)]
    shown = MAX_LIMIT + WORKLIST_PAGE_SIZE
    doctor = new_page()
    sign_in(doctor, world.doctor_a, PASSWORD)
    pending = doctor.locator("#pending")
    pending.locator("tbody tr").first.wait_for()
    doctor.get_by_text("Live updates on").wait_for()
    # The socket's first connection reloads the lists; a "Show more" answered during that reload is dropped.
    doctor.wait_for_load_state("networkidle")
    for rows in range(2 * WORKLIST_PAGE_SIZE, shown + 1, WORKLIST_PAGE_SIZE):
        pending.get_by_role("button", name=f"Show {WORKLIST_PAGE_SIZE} more").click()
        pending.locator(f"tbody tr:nth-child({rows})").wait_for()
    assert pending.locator("tbody tr").count() == shown

    # A colleague's review moves one row to the other list: a live event, and a reload of both lists.
    in_other_thread(lambda: services.review_scan(hospital=world.a, scan=scans[0], reviewer=world.doctor_a2,
                                                 label="glioma"))
    doctor.locator("#pending-count").filter(has_text=f"({total - 1})").wait_for()
    # As many rows as before: the reload asks for as many as were shown, and more are waiting.
    assert pending.locator("tbody tr").count() == shown
    assert f"{shown} of {total - 1} shown" in pending.inner_text()
