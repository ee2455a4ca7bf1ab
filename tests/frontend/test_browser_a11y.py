"""Accessibility of the page scripts, in headless Chromium against daphne: shortcuts that act only where
they are meant, toggles that are buttons, the hospital switcher's name and Escape, a result page that
announces a sentence rather than itself, and a plain answer when the sign-in ended while a page was open.
"""

from urllib.parse import quote

import pytest
from django.conf import settings

from diagnostics.models import Review, Scan
from hospitals.models import Role
from hospitals.services import add_member
from tests.diagnostics.helpers import finish
from tests.diagnostics.samples import jpeg_bytes
from tests.factories import PASSWORD
from tests.frontend.conftest import PHONE, in_other_thread, open_case, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_leftover_tasks")]

SIGNED_OUT = "Your sign-in has ended, so nothing was saved. Sign in again, then repeat this."


def _diagnosis(page):
    return page.evaluate("() => document.getElementById('review-form').elements.label.value")


def _pressed_tool(page):
    return page.locator("button[data-tool][aria-pressed=true]").inner_text()


def test_a_stray_key_changes_nothing_and_the_shortcuts_work_on_the_viewer(world, analysed_scan, new_page):
    doctor = open_case(new_page, world, analysed_scan)
    # Focus on nothing: keys on the page itself choose no diagnosis, tool or overlay.
    doctor.evaluate("() => document.activeElement.blur()")
    assert doctor.evaluate("() => document.activeElement === document.body")
    for key in ("3", "4", "e", "h", "+"):
        doctor.keyboard.press(key)
    assert _diagnosis(doctor) == "glioma"
    assert _pressed_tool(doctor).startswith("Brush")
    assert not doctor.locator("img.heatmap").is_visible()
    assert "scale(1.25)" not in (doctor.locator("#viewer .stage").get_attribute("style") or "")
    # On controls that are not the diagnosis choices: the save button, the shortcuts' own summary, the notes.
    doctor.locator("#review-submit").focus()
    doctor.keyboard.press("3")
    doctor.locator("details summary", has_text="Keyboard shortcuts").focus()
    doctor.keyboard.press("3")
    doctor.get_by_label("Notes").focus()
    doctor.keyboard.press("3")
    assert _diagnosis(doctor) == "glioma"
    assert not doctor.locator("#notumor-note").is_visible()
    assert doctor.get_by_label("Notes").input_value() == "3"

    # On the diagnosis choices, the diagnosis keys choose.
    doctor.locator("input[name=label][value=glioma]").focus()
    doctor.keyboard.press("3")
    assert _diagnosis(doctor) == "notumor"
    doctor.locator("#notumor-note").wait_for(state="visible")
    # On the outline editor, every shortcut works.
    doctor.locator("canvas.outline").focus()
    doctor.keyboard.press("2")
    assert _diagnosis(doctor) == "meningioma"
    doctor.keyboard.press("e")
    assert _pressed_tool(doctor).startswith("Eraser")
    # On the viewer's toolbar too.
    doctor.get_by_role("button", name="Zoom in").focus()
    doctor.keyboard.press("m")
    assert _pressed_tool(doctor).startswith("Move")
    # A click on the scan gives it focus, and a key then acts (moving: the click changes no outline).
    doctor.locator("#viewer").click()
    assert doctor.evaluate("() => document.getElementById('viewer').contains(document.activeElement)")
    doctor.keyboard.press("h")
    doctor.locator("img.heatmap").wait_for(state="visible")
    # Turning the outline off under the keyboard's focus leaves focus on the viewer, where the keys still work.
    doctor.locator("canvas.outline").focus()
    doctor.keyboard.press("o")
    assert not doctor.locator("canvas.outline").is_visible()
    assert doctor.evaluate("() => document.activeElement === document.getElementById('viewer')")
    doctor.keyboard.press("o")
    doctor.locator("canvas.outline").wait_for(state="visible")
    assert doctor.locator("#mask-state").inner_text() == "Outline unchanged."
    # The help says where the keys work.
    help_text = doctor.locator("details", has_text="Keyboard shortcuts").text_content()
    assert "while the scan or one of its tools has focus" in help_text


def test_only_the_tool_buttons_are_toggles(world, analysed_scan, new_page):
    doctor = open_case(new_page, world, analysed_scan)
    toggles = doctor.evaluate("() => [...document.querySelectorAll('[aria-pressed]')].map(e => e.tagName)")
    assert toggles and set(toggles) == {"BUTTON"}
    assert doctor.locator("#viewer").get_attribute("aria-pressed") is None


def _accessible_names(page):
    """Every name in Chromium's own accessibility tree, as a screen reader gets them."""
    session = page.context.new_cdp_session(page)
    tree = session.send("Accessibility.getFullAXTree")["nodes"]
    return [" ".join(node.get("name", {}).get("value", "").split()) for node in tree]


def test_the_hospital_switcher_is_named_by_what_it_shows_and_closes_with_escape(world, new_page):
    add_member(hospital=world.b, user=world.doctor_a, role=Role.DOCTOR)
    page = new_page()
    sign_in(page, world.doctor_a, PASSWORD)
    page.goto("/h/st-anne/worklist/")
    summary = page.locator("details.switcher > summary")
    assert summary.get_attribute("aria-label") is None
    # The name a screen reader says, and a voice user can say, starts with the hospital on screen.
    assert "St Anne's (switch hospital)" in _accessible_names(page)

    summary.click()
    other = page.get_by_role("link", name="North General")
    other.wait_for()
    other.focus()
    page.keyboard.press("Escape")
    assert not page.locator("details.switcher").evaluate("d => d.open")
    assert summary.evaluate("s => document.activeElement === s")
    assert not other.is_visible()


def test_the_result_page_announces_a_short_sentence_not_the_whole_result(world, queued_scan, new_page):
    patient = new_page(PHONE)
    sign_in(patient, world.owner, PASSWORD)
    patient.goto(f"/h/st-anne/scans/{queued_scan.id}/")
    patient.get_by_text("Live updates on").wait_for()
    news = patient.locator("#result-news")
    assert news.get_attribute("aria-live") == "polite"
    patient.wait_for_function("() => document.getElementById('result-news').textContent === 'We are analysing your scan.'")
    # The result and its advice are in no live region: a live update would have them read out in full.
    assert patient.evaluate("""() => {
        const result = document.getElementById('result');
        const live = '[aria-live], [role=status], [role=alert], [role=log]';
        return !result.closest(live) && !result.querySelector(live);
    }""")

    in_other_thread(lambda: finish(queued_scan, "glioma", 0.9))
    patient.wait_for_function("() => document.getElementById('result-news').textContent"
                              " === 'Your scan has been analysed. A doctor will review it before the result is shown.'")
    assert len(news.text_content()) < 100
    assert "A doctor will review it before the result is shown here" in patient.locator("#result").inner_text()


def _end_sign_in(page):
    page.context.clear_cookies(name=settings.SESSION_COOKIE_NAME)
    assert page.context.cookies() and settings.SESSION_COOKIE_NAME not in {c["name"] for c in page.context.cookies()}


def test_a_review_sent_after_the_sign_in_ended_says_so_and_offers_to_sign_in(world, analysed_scan, new_page):
    doctor = open_case(new_page, world, analysed_scan)
    case_url = f"/h/st-anne/scans/{analysed_scan.id}/"
    _end_sign_in(doctor)
    doctor.locator("input[name=label][value=meningioma]").check()
    doctor.locator("#review-submit").click()
    failure = doctor.locator("#review-message .notice.error")
    failure.wait_for()
    assert failure.inner_text() == f"{SIGNED_OUT} Sign in again"
    link = failure.get_by_role("link", name="Sign in again")
    assert link.get_attribute("href") == f"/accounts/login/?next={quote(case_url, safe='')}"
    assert not Review.objects.filter(scan=analysed_scan).exists()

    # The link leads back to the case once signed in.
    link.click()
    doctor.get_by_label("Email").fill(world.doctor_a.email)
    doctor.get_by_label("Password").fill(PASSWORD)
    doctor.get_by_role("button", name="Sign in").click()
    doctor.wait_for_url(f"**{case_url}")
    doctor.locator("#ai-label").wait_for()


def test_an_upload_sent_after_the_sign_in_ended_says_so(world, new_page):
    patient = new_page(PHONE)
    sign_in(patient, world.owner, PASSWORD)
    patient.goto("/h/st-anne/upload/")
    _end_sign_in(patient)
    patient.get_by_label("MRI scan file").set_input_files(
        {"name": "scan.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes("glioma", 1)})
    patient.get_by_role("button", name="Upload").click()
    failure = patient.locator("#upload-error")
    failure.wait_for()
    assert failure.inner_text() == f"{SIGNED_OUT} Sign in again"
    assert failure.get_by_role("link", name="Sign in again").get_attribute("href") \
        == f"/accounts/login/?next={quote('/h/st-anne/upload/', safe='')}"
    assert not Scan.objects.exists()


def test_an_unusual_image_tells_the_patient_a_doctor_looks_first_and_warns_the_doctor(world, queued_scan, new_page):
    """A picture unlike the brain MRIs the software learnt from (diagnostics/ml/gate.py): the patient waits
    for a doctor even where results show at once, and is told why; the doctor is warned."""
    world.a.patients_see_ai_results = "immediately"
    world.a.save(update_fields=["patients_see_ai_results"])
    finish(queued_scan, "notumor", 0.99, unusual=True)
    patient = new_page()
    sign_in(patient, world.owner, PASSWORD)
    patient.goto(f"/h/st-anne/scans/{queued_scan.id}/")
    patient.get_by_text("does not look like the brain MRIs the software was trained on").wait_for()
    assert patient.locator("#result-label").count() == 0  # no "No tumour" to read as reassurance
    assert patient.locator("#result-news").text_content() == (
        "Your image looks unusual for a brain MRI. A doctor will look at it first.")
    doctor = new_page()
    sign_in(doctor, world.doctor_a, PASSWORD)
    doctor.goto(f"/h/st-anne/scans/{queued_scan.id}/")
    warning = doctor.locator("#unusual-image")
    warning.wait_for()
    assert "does not look like the brain MRIs the software learnt from" in warning.inner_text()
    doctor.goto("/h/st-anne/worklist/")
    doctor.locator("#pending tbody tr .badge.unusual").wait_for()  # the worklist marks it too
