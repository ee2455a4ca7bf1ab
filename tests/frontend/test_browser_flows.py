"""The journeys of the issue, in headless Chromium against daphne: inviting a doctor, an outsider who
tries another hospital's case, and a doctor who corrects an outline that the patient then sees.

No Celery worker here: the scans are finished in the test through the worker's own services, so the
outline the doctor corrects is known. The journey through a real worker is test_browser_live_result.
"""

import io
import re
import time

import numpy as np
import pytest
from PIL import Image

from diagnostics import services
from diagnostics.models import Review, Scan
from hospitals.models import Invitation, Membership, Role
from hospitals.services import invite_member
from hospitals.storage import read_blob
from tests.diagnostics.helpers import finish, upload
from tests.diagnostics.samples import jpeg_bytes
from tests.factories import PASSWORD
from tests.frontend.conftest import PHONE, assert_fits_width, in_other_thread, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_leftover_tasks")]



# Scans are made by fixtures listed before `new_page` (queued_scan: tests/frontend/conftest.py): once
# Chromium runs, this thread has an event loop, and the pushes that uploads and results send through
# the channel layer would be refused.
@pytest.fixture
def analysed_scan(live, world, api):
    """Patient A1's scan, analysed as glioma with a known outline (rows 10-30, columns 20-50)."""
    response = upload(api(world.owner), world.a, jpeg_bytes("glioma", 0))
    assert response.status_code == 201, response.content
    scan = Scan.objects.get(pk=response.json()["id"])
    finish(scan, "glioma", 0.91)
    return scan


def _invitation_token(server, email, timeout=10):
    # The live server sends mail to its console: the invitation is in its log, as in a mailbox.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tokens = re.findall(rf"To: {re.escape(email)}.*?invitation token: (\S+)", server.log(), re.S)
        if tokens:
            return tokens[-1]
        time.sleep(0.2)
    raise AssertionError(f"no invitation mail for {email} in the server log:\n{server.log()[-2000:]}")


def test_admin_invites_a_doctor_who_signs_up_and_sees_the_worklist(new_page, world, asgi_server):
    admin = new_page()
    sign_in(admin, world.admin_a, PASSWORD)
    admin.get_by_role("link", name="Members").click()
    admin.get_by_label("Email", exact=True).fill("new.doctor@st-anne.example")
    admin.get_by_label("Role", exact=True).select_option("doctor")
    admin.get_by_role("button", name="Send invitation").click()
    admin.get_by_text("Invitation sent to new.doctor@st-anne.example.").wait_for()
    screenshot(admin, "flow-admin-invited")

    token = _invitation_token(asgi_server, "new.doctor@st-anne.example")
    doctor = new_page(PHONE)
    doctor.goto(f"/invite/{token}/")
    # The link's token stays out of the address bar, the history and the form's posts (and their Referer).
    assert doctor.url.endswith("/invite/accept/") and token not in doctor.content()
    doctor.get_by_label("Password", exact=True).fill("a-long-new-secret-5")
    doctor.get_by_label("Password again").fill("a-long-new-secret-5")
    doctor.get_by_role("button", name="Accept invitation").click()
    doctor.get_by_role("heading", name="Worklist").wait_for()
    doctor.get_by_text("Welcome to St Anne's.").wait_for()
    assert doctor.url.endswith("/h/st-anne/worklist/")
    doctor.locator("#pending").get_by_text("Nothing here.").wait_for()
    assert_fits_width(doctor)
    screenshot(doctor, "flow-invited-doctor-worklist-phone")
    assert Membership.objects.get(user__email="new.doctor@st-anne.example", hospital=world.a).role == Role.DOCTOR


def test_revoking_an_invitation_asks_first_and_cancel_keeps_it(new_page, world):
    invite_member(hospital=world.a, email="pending@st-anne.example", role=Role.DOCTOR, actor=world.admin_a)
    admin = new_page()
    sign_in(admin, world.admin_a, PASSWORD)
    admin.goto("/h/st-anne/members/")
    revoke = admin.get_by_role("button", name="Revoke invitation to pending@st-anne.example")
    prompts = []

    def answer(accept):
        def handle(dialog):
            prompts.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()
        return handle

    admin.once("dialog", answer(False))
    revoke.click()
    admin.wait_for_timeout(500)
    assert prompts == ["Revoke the invitation to pending@st-anne.example? Its link stops working."]
    assert Invitation.objects.filter(email="pending@st-anne.example").exists()
    admin.once("dialog", answer(True))
    revoke.click()
    admin.get_by_text("The invitation to pending@st-anne.example no longer works.").wait_for()
    assert not Invitation.objects.filter(email="pending@st-anne.example").exists()


def test_patient_fields_show_only_for_a_patient_invitation(new_page, world):
    admin = new_page()
    sign_in(admin, world.admin_a, PASSWORD)
    admin.goto("/h/st-anne/members/")
    assert not admin.get_by_label("Full name").is_visible()
    admin.get_by_label("Role", exact=True).select_option("patient")
    admin.get_by_label("Full name").fill("Grace Hopper")
    admin.get_by_label("Date of birth").fill("1970-12-09")
    admin.get_by_label("Medical record number").fill("MRN-1906")
    admin.get_by_label("Email", exact=True).fill("grace@st-anne.example")
    admin.get_by_role("button", name="Send invitation").click()
    admin.get_by_text("Invitation sent to grace@st-anne.example.").wait_for()
    assert Invitation.objects.get(email="grace@st-anne.example").patient.full_name == "Grace Hopper"


def test_outsider_opening_another_hospitals_case_gets_not_found(world, queued_scan, new_page):
    scan = {"id": str(queued_scan.id)}
    page = new_page()
    sign_in(page, world.outsider, PASSWORD)
    for url in (f"/h/st-anne/scans/{scan['id']}/", f"/h/north-general/scans/{scan['id']}/"):
        response = page.goto(url)
        assert response.status == 404
        page.get_by_role("heading", name="Page not found").wait_for()
    # The images behind the page answer the same.
    assert page.goto(f"/api/v1/hospitals/st-anne/scans/{scan['id']}/image.png").status == 404
    page.goto(f"/h/st-anne/scans/{scan['id']}/")
    screenshot(page, "flow-outsider-not-found")


def _drag(page, box, start, end):
    page.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
    page.mouse.down()
    steps = 12
    for i in range(1, steps + 1):
        f = i / steps
        page.mouse.move(box["x"] + box["width"] * (start[0] + (end[0] - start[0]) * f),
                        box["y"] + box["height"] * (start[1] + (end[1] - start[1]) * f))
    page.mouse.up()


def test_doctor_corrects_the_outline_and_the_patient_sees_the_confirmed_result(world, analysed_scan, new_page):
    scan = analysed_scan

    waiting = new_page(PHONE)
    sign_in(waiting, world.owner, PASSWORD)
    waiting.get_by_role("link", name="View").first.click()
    waiting.get_by_text("A doctor will review it before the result is shown here").wait_for()
    # Nothing is overlaid before the review, so no overlay toggles are offered either.
    assert not waiting.get_by_label("Show outline").is_visible()
    assert not waiting.get_by_label("Show heatmap").is_visible()
    assert waiting.get_by_role("button", name="Remove this scan").is_visible()  # until a doctor reviews it

    doctor = new_page()
    sign_in(doctor, world.doctor_a, PASSWORD)
    doctor.locator("#pending").get_by_role("link").first.click()
    doctor.get_by_role("heading", name="Case of").wait_for()
    doctor.locator("#ai-label").wait_for()
    assert doctor.locator("#ai-label").inner_text() == "Glioma"
    outline = doctor.locator("canvas.outline")
    outline.wait_for()
    # Paint a stroke well away from the model's outline (rows 10-30, columns 20-50 of the scan), and
    # erase a band through the middle of that outline (row 20).
    box = outline.bounding_box()
    _drag(doctor, box, (0.60, 0.70), (0.80, 0.70))
    assert "Outline corrected" in doctor.locator("#mask-state").inner_text()
    doctor.keyboard.press("e")
    assert doctor.get_by_role("button", name="Eraser").get_attribute("aria-pressed") == "true"
    row_20 = (20 + 0.5) / scan.height
    _drag(doctor, box, (5 / scan.width, row_20), (65 / scan.width, row_20))

    # Zoom, heatmap and its opacity, by keyboard and slider.
    doctor.keyboard.press("+")
    assert "scale(1.25)" in doctor.locator("#viewer .stage").get_attribute("style")
    doctor.keyboard.press("f")
    assert "scale(1)" in doctor.locator("#viewer .stage").get_attribute("style")
    doctor.keyboard.press("h")
    doctor.locator("img.heatmap").wait_for(state="visible")
    doctor.get_by_label("Heatmap opacity").fill("80")
    assert doctor.locator("img.heatmap").evaluate("img => img.style.opacity") == "0.8"
    # "No tumour" tells the doctor that the patient will see no outline with it.
    doctor.keyboard.press("3")
    doctor.locator("#notumor-note").wait_for(state="visible")
    # Keyboard: "2" picks the second class, Ctrl+Enter saves.
    doctor.keyboard.press("2")
    assert not doctor.locator("#notumor-note").is_visible()
    doctor.get_by_label("Notes").fill("Extra-axial, dural tail.")
    assert doctor.locator("#review-submit").inner_text() == "Save changed diagnosis"
    doctor.keyboard.press("Control+Enter")
    doctor.get_by_text("Saved: Meningioma (was Glioma), outline corrected.").wait_for()
    doctor.locator("#reviews").get_by_text("by doctor1@st-anne.example").wait_for()
    doctor.locator("#status").get_by_text("Reviewed by a doctor").wait_for()
    doctor.get_by_text("Outline unchanged.").wait_for()
    screenshot(doctor, "flow-doctor-corrected")
    # The patient's open page follows the review: the scan is part of their record now.
    waiting.locator("#remove-scan").wait_for(state="hidden")

    scan.refresh_from_db()
    assert (scan.review_state, scan.reviewed_label) == ("corrected", "meningioma")
    review = Review.objects.get(scan=scan)
    assert review.mask_changed and review.notes == "Extra-axial, dural tail."
    mask = np.asarray(Image.open(io.BytesIO(read_blob(
        world.a, review.mask_path, record_type=services.REVIEW_MASK_BLOB, record_id=review.id,
        sha256=review.mask_sha256))))
    assert mask.shape == (scan.height, scan.width)
    assert mask[int(scan.height * 0.70), int(scan.width * 0.70)] == 255  # the doctor's stroke
    assert mask[20, 35] == 0  # erased from the model's outline
    assert mask[11, 35] == 255 and mask[29, 35] == 255  # the rest of it kept

    patient = new_page(PHONE)
    sign_in(patient, world.owner, PASSWORD)
    patient.get_by_role("link", name="View").first.click()
    patient.locator("#result-label").wait_for()
    assert patient.locator("#result-label").inner_text() == "Meningioma"
    assert patient.locator("#result h2").first.inner_text() == "Meningioma"  # reviewed: the reading itself
    patient.get_by_text("A doctor has reviewed your scan and changed the software's result to this one.").wait_for()
    # The advice follows the doctor's label and speaks of the doctor, not of the software.
    assert patient.locator("#advice-title").inner_text() == "Your doctor sees signs of a meningioma"
    assert "will review" not in patient.locator("#result").inner_text()
    patient.get_by_label("Show outline").wait_for()
    patient.locator("canvas.outline").wait_for(state="visible")
    # A patient's screen reader says what the outline is, not how many pixels it covers.
    assert patient.locator("canvas.outline").get_attribute("aria-label").startswith("Outline of the area")
    patient.get_by_label("Show outline").uncheck()
    assert not patient.locator("canvas.outline").is_visible()
    patient.get_by_label("Show outline").check()
    assert "preliminary" not in patient.locator("#result").inner_text().lower()
    assert_fits_width(patient)
    screenshot(patient, "flow-patient-confirmed-phone")


def test_leaving_the_case_with_an_unsaved_outline_asks_first(world, analysed_scan, new_page):
    doctor = new_page()
    sign_in(doctor, world.doctor_a, PASSWORD)
    case_url = f"/h/st-anne/scans/{analysed_scan.id}/"
    doctor.goto(case_url)
    outline = doctor.locator("canvas.outline")
    outline.wait_for()
    doctor.locator("#ai-label").wait_for()
    kinds = []

    def answer(accept):
        def handle(dialog):
            kinds.append(dialog.type)
            dialog.accept() if accept else dialog.dismiss()
        return handle

    # Unchanged: leaving asks nothing.
    doctor.get_by_role("link", name="Back to the worklist").click()
    doctor.wait_for_url("**/worklist/")
    assert kinds == []
    doctor.goto(case_url)
    outline.wait_for()
    doctor.locator("#ai-label").wait_for()
    _drag(doctor, outline.bounding_box(), (0.60, 0.70), (0.80, 0.70))
    doctor.once("dialog", answer(False))
    doctor.get_by_role("link", name="Back to the worklist").click()
    doctor.wait_for_timeout(500)
    assert kinds == ["beforeunload"] and doctor.url.endswith(case_url)
    assert "Outline corrected" in doctor.locator("#mask-state").inner_text()
    doctor.once("dialog", answer(True))
    doctor.get_by_role("link", name="Back to the worklist").click()
    doctor.wait_for_url("**/worklist/")
    assert kinds == ["beforeunload", "beforeunload"]


def test_worklist_shows_a_new_upload_live_with_the_patients_name(world, api, new_page):
    doctor = new_page()
    sign_in(doctor, world.doctor_a, PASSWORD)
    doctor.get_by_text("Live updates on").wait_for()
    doctor.locator("#pending").get_by_text("Nothing here.").wait_for()

    def upload_and_analyse():
        response = upload(api(world.owner), world.a, jpeg_bytes("notumor", 2))
        scan = Scan.objects.get(pk=response.json()["id"])
        finish(scan, "notumor", 0.77)
        return scan

    scan = in_other_thread(upload_and_analyse)
    name = scan.patient.full_name  # not on the page when it loaded: fetched from the patients API
    row = doctor.locator("#pending tr", has_text=name)
    row.get_by_text("Analysed").wait_for()
    assert "No tumour" in row.inner_text() and "77%" in row.inner_text()
    doctor.get_by_label("Class").select_option("glioma")
    doctor.locator("#pending").get_by_text("Nothing here.").wait_for()
    doctor.get_by_label("Class").select_option("notumor")
    row.wait_for()
    screenshot(doctor, "flow-worklist-live")


def _accept_dialogs(page, prompts):
    def handle(dialog):
        prompts.append(dialog.message)
        dialog.accept()
    page.on("dialog", handle)


def test_an_admin_removes_a_scan_and_the_patients_open_page_says_it_is_gone(world, analysed_scan, new_page):
    patient = new_page(PHONE)
    console_errors = []
    patient.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    sign_in(patient, world.owner, PASSWORD)
    patient.goto(f"/h/st-anne/scans/{analysed_scan.id}/")
    patient.get_by_text("Live updates on").wait_for()

    doctor = new_page()  # with notes typed and not saved
    sign_in(doctor, world.doctor_a, PASSWORD)
    doctor.goto(f"/h/st-anne/scans/{analysed_scan.id}/")
    doctor.get_by_text("Live updates on").wait_for()
    doctor.get_by_label("Notes").fill("Looks extra-axial")

    admin = new_page()
    sign_in(admin, world.admin_a, PASSWORD)
    admin.goto(f"/h/st-anne/scans/{analysed_scan.id}/")
    admin.get_by_label("Reason").fill("Uploaded for the wrong patient")
    prompts = []
    _accept_dialogs(admin, prompts)
    admin.get_by_role("button", name="Remove scan").click()
    admin.get_by_text("has been removed").wait_for()
    assert admin.url.endswith("/h/st-anne/worklist/") and prompts[0].startswith("Remove this scan")
    assert not Scan.objects.filter(pk=analysed_scan.pk).exists()

    # No reload: the socket closes for a scan that is gone, and the page asks the API, which says so.
    patient.get_by_text("This scan has been removed, or you can no longer see it.").wait_for()
    assert not patient.locator(".viewer-layout").is_visible()
    assert not patient.get_by_role("button", name="Remove this scan").is_visible()
    # The page's live region no longer speaks of a reading that is gone; the alert above says what happened.
    assert patient.locator("#result-news").text_content() == ""
    assert console_errors == []  # told by the socket; no request the server would refuse
    screenshot(patient, "flow-patient-scan-removed-phone")

    # The doctor's unsaved notes are for a case that is gone: leaving does not ask to keep them.
    doctor.get_by_text("This scan has been removed, or you can no longer see it.").wait_for()
    asked = []
    _accept_dialogs(doctor, asked)
    doctor.goto("/h/st-anne/worklist/")
    assert asked == []


def test_a_patient_removes_their_own_scan_after_confirming(world, analysed_scan, new_page):
    patient = new_page(PHONE)
    sign_in(patient, world.owner, PASSWORD)
    patient.goto(f"/h/st-anne/scans/{analysed_scan.id}/")
    prompts = []
    _accept_dialogs(patient, prompts)
    patient.get_by_role("button", name="Remove this scan").click()
    patient.get_by_text("has been removed").wait_for()
    assert patient.url.endswith("/h/st-anne/scans/") and prompts == [
        "Remove this scan, its result and its images? This cannot be undone."]
    assert not Scan.objects.filter(pk=analysed_scan.pk).exists()
    assert_fits_width(patient)


def _shown_slice(page):
    """The slice the scan image shows once loaded, from its ?slice= (None: the page's first image)."""
    page.wait_for_function("() => { const i = document.querySelector('#viewer img.scan');"
                           " return i.complete && i.naturalWidth > 0; }")
    match = re.search(r"\?slice=(\d+)$", page.locator("#viewer img.scan").get_attribute("src"))
    return int(match.group(1)) if match else None


def test_doctor_moves_through_the_slices_of_a_volume(world, analysed_volume, new_page):
    doctor = new_page()
    sign_in(doctor, world.doctor_a, PASSWORD)
    doctor.goto(f"/h/st-anne/scans/{analysed_volume.id}/")
    doctor.locator("#ai-label").wait_for()
    label = doctor.locator("#slice-nav .slice-label")
    doctor.locator("canvas.outline").wait_for()
    assert label.inner_text() == "Slice 4 of 5 · analysed slice · tumour found by the software"
    assert _shown_slice(doctor) is None  # the analysed slice, as the image API serves it by default
    assert doctor.locator("#slice-nav .slice-findings").inner_text() == "The software found a tumour on slices 3–4."
    assert doctor.locator("#slice-marks option").evaluate_all("os => os.map(o => o.value)") == ["3", "4"]
    assert "corrections apply to this slice only" in doctor.locator("#slice-note").inner_text()

    # A Space stroke on the editor cut short by Page Down has painted: it is an edit all the same.
    assert doctor.locator("#mask-state").inner_text() == "Outline unchanged."
    doctor.locator("canvas.outline").focus()
    doctor.keyboard.down(" ")
    doctor.keyboard.press("ArrowDown")
    doctor.keyboard.press("PageDown")
    doctor.keyboard.up(" ")
    assert label.inner_text() == "Slice 5 of 5" and _shown_slice(doctor) == 4
    assert "Outline corrected" in doctor.locator("#mask-state").inner_text()
    doctor.keyboard.press("PageUp")
    doctor.keyboard.press("z")
    doctor.locator("#mask-state").filter(has_text="Outline unchanged.").wait_for()

    doctor.keyboard.press("PageDown")
    assert label.inner_text() == "Slice 5 of 5" and _shown_slice(doctor) == 4
    # The outline and heatmap belong to slice 4: off it they are hidden, and painting does nothing.
    assert not doctor.locator("canvas.outline").is_visible()
    assert "belong to the analysed slice (slice 4) and are not shown here" in doctor.locator("#slice-note").inner_text()
    doctor.keyboard.press("h")
    assert not doctor.locator("img.heatmap").is_visible()
    box = doctor.locator("#viewer").bounding_box()
    _drag(doctor, box, (0.6, 0.7), (0.8, 0.7))
    assert doctor.locator("#mask-state").inner_text() == "Outline unchanged."
    doctor.keyboard.press("PageDown")  # already the last slice
    assert label.inner_text() == "Slice 5 of 5"
    for _ in range(5):
        doctor.keyboard.press("PageUp")
    assert label.inner_text() == "Slice 1 of 5" and _shown_slice(doctor) == 0
    doctor.get_by_label("Slice", exact=True).fill("3")
    assert label.inner_text() == "Slice 3 of 5 · tumour found by the software" and _shown_slice(doctor) == 2
    doctor.get_by_role("button", name="Back to the analysed slice").click()
    assert label.inner_text().startswith("Slice 4 of 5") and _shown_slice(doctor) == 3
    doctor.locator("canvas.outline").wait_for(state="visible")
    doctor.locator("img.heatmap").wait_for(state="visible")
    assert not doctor.get_by_role("button", name="Back to the analysed slice").is_visible()
    doctor.locator("#slice-nav .slice-findings").get_by_role("button", name="slices 3–4").click()
    assert _shown_slice(doctor) == 2
    screenshot(doctor, "flow-doctor-volume-slices")


def test_doctor_corrects_the_outline_with_the_keyboard_alone(world, analysed_scan, new_page):
    scan = analysed_scan
    doctor = new_page()
    sign_in(doctor, world.doctor_a, PASSWORD)
    doctor.goto(f"/h/st-anne/scans/{scan.id}/")
    outline = doctor.locator("canvas.outline")
    outline.wait_for()
    # The model's outline is rows 10-30, columns 20-50: 600 pixels.
    doctor.wait_for_function("() => document.querySelector('canvas.outline').getAttribute('aria-label')"
                             " === 'Outline covers 600 pixels'")
    cursor = doctor.locator(".brush-cursor")
    assert not cursor.is_visible()
    doctor.get_by_label("Brush size").fill("2")
    outline.focus()
    assert outline.evaluate("c => document.activeElement === c && c.tabIndex === 0")
    assert outline.get_attribute("role") == "application"
    cursor.wait_for(state="visible")
    # The cursor starts at the centre of the scan; Shift+arrows move it one pixel at a time.
    start = cursor.bounding_box()
    doctor.keyboard.press("Shift+ArrowRight")
    assert cursor.bounding_box()["x"] > start["x"]
    doctor.keyboard.press("Shift+ArrowLeft")
    doctor.keyboard.press("Space")
    painted = int(re.search(r"\d+", outline.get_attribute("aria-label")).group())
    assert painted > 600
    assert doctor.locator(".outline-live").inner_text() == f"Outline covers {painted} pixels"
    assert "Outline corrected" in doctor.locator("#mask-state").inner_text()
    # Holding Space while moving draws a stroke; on the editor the arrow keys move the brush, not the
    # zoomed view as they do elsewhere on the page.
    doctor.keyboard.press("+")
    view = doctor.locator("#viewer .stage").get_attribute("style")
    assert "scale(1.25)" in view
    doctor.keyboard.down(" ")
    for _ in range(5):
        doctor.keyboard.press("ArrowDown")
    doctor.keyboard.up(" ")
    stroked = int(re.search(r"\d+", outline.get_attribute("aria-label")).group())
    assert stroked > painted
    assert doctor.locator("#viewer .stage").get_attribute("style") == view
    doctor.keyboard.press("f")
    # Undo takes back both keyboard edits; E switches to the eraser, which then rubs the outline out.
    doctor.keyboard.press("z")
    doctor.keyboard.press("z")
    assert outline.get_attribute("aria-label") == "Outline covers 600 pixels"
    doctor.keyboard.press("e")
    assert cursor.get_attribute("data-tool") == "eraser"
    # Walk the eraser over the model's outline (rows 10-30, columns 20-50) from the top-left corner.
    doctor.get_by_label("Brush size").fill("30")
    outline.focus()
    for _ in range(20):
        doctor.keyboard.press("ArrowUp")
        doctor.keyboard.press("ArrowLeft")
    doctor.keyboard.down(" ")
    for _ in range(3):
        doctor.keyboard.press("ArrowRight")
        doctor.keyboard.press("ArrowDown")
    doctor.keyboard.up(" ")
    assert outline.get_attribute("aria-label") == "No outline"
    assert doctor.locator(".outline-live").inner_text() == "No outline"
    screenshot(doctor, "flow-doctor-keyboard-outline")


@pytest.fixture
def preliminary_volume(live, world, api):
    """A five-slice volume of patient A1, analysed on slice 4, in a hospital that shows results at once
    and has set its own emergency number."""
    from hospitals.models import AIResultVisibility
    from tests.diagnostics.samples import nifti_bytes

    world.a.patients_see_ai_results = AIResultVisibility.IMMEDIATELY
    world.a.emergency_phone = "+44 20 7946 0999"
    world.a.save()
    response = upload(api(world.owner), world.a, nifti_bytes("glioma", 5), name="head.nii")
    scan = Scan.objects.get(pk=response.json()["id"])
    finish(scan, "glioma", 0.88, slice_index=3, tumour_slices=(2, 3))
    return scan


def test_patient_browses_their_volume_before_review_without_the_softwares_reading(world, analysed_volume, new_page):
    patient = new_page(PHONE)
    sign_in(patient, world.owner, PASSWORD)
    patient.get_by_role("link", name="View").first.click()
    patient.get_by_text("A doctor will review it before the result is shown here").wait_for()
    label = patient.locator("#slice-nav .slice-label")
    # The middle slice, not the analysed one, and no word of where the software looked.
    assert label.inner_text() == "Slice 3 of 5"
    patient.keyboard.press("PageDown")
    assert label.inner_text() == "Slice 4 of 5" and _shown_slice(patient) == 3
    assert not patient.get_by_role("button", name="Back to the analysed slice").is_visible()
    assert not patient.locator("#slice-nav .slice-findings").is_visible()
    assert patient.locator("#slice-note").inner_text() == ""
    assert not patient.locator("canvas.outline").is_visible() and not patient.locator("img.heatmap").is_visible()
    assert_fits_width(patient)


def test_patient_reads_what_the_heatmap_means_and_follows_the_advices_sources(world, preliminary_volume, new_page):
    patient = new_page(PHONE)
    sign_in(patient, world.owner, PASSWORD)
    patient.goto(f"/h/st-anne/scans/{preliminary_volume.id}/")
    patient.locator("#result-label").wait_for()
    assert patient.locator("#slice-nav .slice-label").inner_text() == "Slice 4 of 5 · analysed slice"
    note = patient.locator("#heatmap-note")
    assert not note.is_visible()
    patient.get_by_label("Show heatmap").check()
    patient.locator("img.heatmap").wait_for(state="visible")
    assert "It is not the outline of a tumour" in note.inner_text()
    assert patient.get_by_label("Show heatmap").get_attribute("aria-describedby") == "heatmap-note"
    patient.keyboard.press("PageUp")
    assert not patient.locator("img.heatmap").is_visible()
    assert "not shown here" in patient.locator("#slice-note").inner_text()

    patient.locator("summary", has_text="Sources").click()
    links = patient.locator("#result details a")
    assert links.count() >= 4
    for i in range(links.count()):
        link = links.nth(i)
        assert link.get_attribute("href").startswith("https://")
        assert "noopener" in link.get_attribute("rel") and "external" in link.get_attribute("rel")
        assert link.get_attribute("target") == "_blank"
    assert links.first.inner_text().startswith("NHS: Brain tumours")
    assert "call +44 20 7946 0999 straight away" in patient.locator("#result").inner_text()
    assert "911" not in patient.locator("#result").inner_text()
    assert_fits_width(patient)
    screenshot(patient, "flow-patient-volume-heatmap-phone")


def test_a_patient_prints_their_result_without_the_sites_controls(world, preliminary_volume, new_page):
    patient = new_page()
    sign_in(patient, world.owner, PASSWORD)
    patient.goto(f"/h/st-anne/scans/{preliminary_volume.id}/")
    patient.locator("#result-label").wait_for()
    assert patient.get_by_role("button", name="Print this result").is_visible()
    # Unreviewed, the heading says whose reading it is rather than stating a diagnosis.
    assert patient.locator("#result h2").first.inner_text() == "The software's preliminary reading: Glioma"
    assert not patient.locator(".print-only").first.is_visible()

    patient.emulate_media(media="print")
    for control in (patient.locator(".site-header"), patient.get_by_role("button", name="Print this result"),
                    patient.locator("#overlay-tools"), patient.locator(".site-footer"),
                    patient.get_by_role("link", name="Back to my scans")):
        assert not control.is_visible()
    heading = patient.locator(".print-only").first.inner_text()
    name = preliminary_volume.patient.full_name
    assert heading == f"St Anne's · printed from NeuroFed · {name} · not yet reviewed by a doctor"
    assert patient.locator("#result-label").is_visible() and patient.locator("#advice-title").is_visible()
    assert patient.locator("#viewer img").first.is_visible()
    # The sources are printed with their addresses, not as a fold that paper cannot open.
    printed = patient.locator("#result .print-only")
    assert printed.is_visible() and "https://" in printed.inner_text()
    assert not patient.locator("#result details").is_visible()
    screenshot(patient, "flow-patient-result-print")
    assert patient.pdf(format="A4").startswith(b"%PDF")


def test_a_file_over_the_limit_is_refused_before_it_is_sent(world, new_page, settings, tmp_path):
    patient = new_page(PHONE)
    sign_in(patient, world.owner, PASSWORD)
    patient.goto("/h/st-anne/upload/")
    sent = []
    patient.on("request", lambda request: sent.append(request.url) if request.method == "POST" else None)
    oversized = tmp_path / "huge.jpg"  # a JPEG's start and then one limit's worth of bytes
    with oversized.open("wb") as out:
        out.write(b"\xff\xd8\xff")
        out.truncate(settings.UPLOAD_MAX_BYTES + 3)
    patient.get_by_label("MRI scan file").set_input_files(str(oversized))
    patient.get_by_role("button", name="Upload").click()
    patient.get_by_text("The file is larger than 50 MB, the most that can be uploaded.").wait_for()
    assert sent == [] and not Scan.objects.filter(patient__user=world.owner).exists()
