"""The case page's review form as a doctor reads it: the words after a save name what this review did,
as the reviews list does, never the scan's overall review state (which stays "changed" once any outline
was corrected, so it would call a plain confirmation a change); and the preselected diagnosis follows a
colleague's review that arrives while the page is open."""

import pytest

from diagnostics import services
from tests.diagnostics.helpers import finish
from tests.factories import PASSWORD
from tests.frontend.conftest import in_other_thread, open_case, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_leftover_tasks")]


def _paint_stroke(page):
    box = page.locator("canvas.outline").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.7)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.7, steps=8)
    page.mouse.up()


def _save_and_read_message(page):
    page.locator("#review-message").evaluate("el => { el.textContent = ''; }")
    page.locator("#review-submit").click()
    message = page.locator("#review-message .notice")
    message.wait_for()
    return message.inner_text()


def test_the_saved_message_says_what_the_review_did(world, analysed_scan, new_page):
    doctor = open_case(new_page, world, analysed_scan)

    # The software's glioma, kept, with a corrected outline: a confirmation, not a change of diagnosis.
    _paint_stroke(doctor)
    assert "Outline corrected" in doctor.locator("#mask-state").inner_text()
    assert _save_and_read_message(doctor) == "Saved: Glioma confirmed, outline corrected."

    doctor.get_by_label("Meningioma").check()
    assert _save_and_read_message(doctor) == "Saved: Meningioma (was Glioma)."

    # Confirming the standing diagnosis again changes nothing, whatever the scan's state says.
    doctor.get_by_role("button", name="Confirm diagnosis").wait_for()  # once the saved review is shown
    assert _save_and_read_message(doctor) == "Saved: Meningioma confirmed."
    items = doctor.locator("#reviews li")
    assert items.count() == 3
    assert "Meningioma (confirmed)" in items.nth(2).inner_text()


def _colleague_reviews(world, scan, label):
    in_other_thread(lambda: services.review_scan(hospital=world.a, scan=scan, reviewer=world.doctor_a2, label=label))


def _chosen(page):
    return page.evaluate("() => document.getElementById('review-form').elements.label.value")


def test_a_colleagues_review_moves_the_preselected_diagnosis_but_never_the_doctors_own_choice(
        world, analysed_scan, new_page):
    doctor = open_case(new_page, world, analysed_scan)
    assert doctor.locator("#review-submit").inner_text() == "Confirm diagnosis"

    # A colleague changes the diagnosis while this page is open: the page does not keep offering the
    # software's glioma, which this doctor never chose, as a change that would undo the colleague's.
    _colleague_reviews(world, analysed_scan, "meningioma")
    doctor.locator("#reviews").get_by_text("Meningioma (was Glioma)").wait_for()
    doctor.wait_for_function("() => document.getElementById('review-form').elements.label.value === 'meningioma'")
    assert doctor.locator("#review-submit").inner_text() == "Confirm diagnosis"

    # A choice the doctor made stays theirs when another review arrives.
    doctor.locator("#diagnosis-choices").get_by_label("Meningioma").focus()
    doctor.keyboard.press("4")
    _colleague_reviews(world, analysed_scan, "glioma")
    doctor.locator("#reviews").get_by_text("Glioma (was Meningioma)").wait_for()
    assert _chosen(doctor) == "pituitary"
    assert doctor.locator("#review-submit").inner_text() == "Save changed diagnosis"


def test_a_later_review_that_leaves_the_review_state_as_it_was_still_reaches_the_open_page(
        world, analysed_scan, new_page):
    doctor = open_case(new_page, world, analysed_scan)
    _colleague_reviews(world, analysed_scan, "meningioma")
    doctor.locator("#reviews").get_by_text("Meningioma (was Glioma)").wait_for()

    # "Changed by a doctor" before and after: the diagnosis still moved, and the page shows it.
    _colleague_reviews(world, analysed_scan, "notumor")
    doctor.locator("#reviews").get_by_text("No tumour (was Meningioma)").wait_for()
    doctor.wait_for_function("() => document.getElementById('review-form').elements.label.value === 'notumor'")


@pytest.fixture
def near_certain_scan(queued_scan):
    finish(queued_scan, "glioma", 0.9999976)
    return queued_scan


def test_a_near_certain_reading_never_shows_as_certain(world, near_certain_scan, new_page):
    doctor = new_page()
    sign_in(doctor, world.doctor_a, PASSWORD)
    # The worklist rounds to whole percents, the case page to tenths: neither says 100 % nor 0 %.
    row = doctor.locator("#pending tbody tr").first
    row.wait_for()
    assert row.locator('td[data-label="AI confidence"]').inner_text() == ">99%"
    row.get_by_role("link").click()
    doctor.locator("#ai-label").wait_for()
    assert ", confidence >99.9%" in doctor.locator("#ai-body p").first.inner_text()
    shares = doctor.locator("ul.probs li > span:last-child").all_inner_texts()
    assert shares == [">99.9%", "<0.1%", "<0.1%", "<0.1%"]


def test_a_colleagues_review_arriving_while_the_doctor_decides_is_said_in_words(world, analysed_scan, new_page):
    doctor = open_case(new_page, world, analysed_scan)
    doctor.locator("#diagnosis-choices").get_by_label("Pituitary").check()
    _colleague_reviews(world, analysed_scan, "meningioma")
    notice = doctor.locator("#review-message .notice")
    notice.wait_for()
    assert "saved a review meanwhile: Meningioma. Read it under Reviews before you save yours." in notice.inner_text()
    # Having been shown it, the doctor's own choice is saved over it deliberately.
    assert _save_and_read_message(doctor) == "Saved: Pituitary tumour (was Meningioma)."


def test_notes_typed_under_the_standing_diagnosis_keep_it_when_a_colleague_changes_it(world, analysed_scan, new_page):
    """Notes are a review begun: a colleague's review is announced, and the diagnosis the notes were written
    about stays selected, so saving them never confirms the colleague's diagnosis under them."""
    doctor = open_case(new_page, world, analysed_scan)
    doctor.get_by_label("Notes").fill("Agree with glioma: ring enhancement.")
    # The colleague's review makes the page fetch the outline again; held here, the form must not wait for it.
    held_masks = []
    doctor.route("**/mask.png?*", lambda route: held_masks.append(route))
    _colleague_reviews(world, analysed_scan, "meningioma")
    doctor.locator("#review-message").get_by_text("saved a review meanwhile: Meningioma.").wait_for()
    assert _chosen(doctor) == "glioma"
    assert doctor.locator("#review-submit").inner_text() == "Save changed diagnosis"
    assert held_masks, "the page did not fetch the outline again"
    for request in held_masks:
        request.continue_()
    doctor.unroute("**/mask.png?*")
    assert _save_and_read_message(doctor) == "Saved: Glioma (was Meningioma)."
    latest = analysed_scan.reviews.order_by("created_at").last()
    assert (latest.label, latest.notes) == ("glioma", "Agree with glioma: ring enhancement.")


def test_a_colleagues_later_review_replaces_the_doctors_saved_notice(world, analysed_scan, new_page):
    """"Saved: …" left up after a colleague's later review would read as the case's standing diagnosis."""
    doctor = open_case(new_page, world, analysed_scan)
    doctor.locator("#diagnosis-choices").get_by_label("Pituitary").check()
    assert _save_and_read_message(doctor) == "Saved: Pituitary tumour (was Glioma)."
    _colleague_reviews(world, analysed_scan, "meningioma")
    doctor.locator("#review-message").get_by_text("saved a later review: Meningioma. It is listed under "
                                                  "Reviews.").wait_for()
    assert doctor.locator("#review-message .notice.ok").count() == 0
    # A second later review replaces the first one's sentence in turn.
    _colleague_reviews(world, analysed_scan, "notumor")
    doctor.locator("#review-message").get_by_text("saved a later review: No tumour.").wait_for()
    assert doctor.locator("#review-message .notice").count() == 1


def test_a_review_saved_over_a_colleagues_the_page_never_showed_is_refused_then_shown(world, analysed_scan, new_page):
    doctor = open_case(new_page, world, analysed_scan)

    def colleague_saves_first(route):
        # The colleague's review lands while this doctor's is on its way: the page cannot have shown it.
        _colleague_reviews(world, analysed_scan, "meningioma")
        route.continue_()

    doctor.route("**/review/", colleague_saves_first, times=1)
    doctor.locator("#diagnosis-choices").get_by_label("Pituitary").check()
    doctor.locator("#review-submit").click()
    error = doctor.locator("#review-message .notice.error")
    error.wait_for()
    assert "Another doctor reviewed this scan after you opened it" in error.inner_text()
    doctor.locator("#reviews").get_by_text("Meningioma (was Glioma)").wait_for()
    assert [r.label for r in analysed_scan.reviews.order_by("created_at")] == ["meningioma"]

    # Now that the page shows the colleague's review, the doctor's own saves.
    assert _save_and_read_message(doctor) == "Saved: Pituitary tumour (was Meningioma)."
    assert [r.label for r in analysed_scan.reviews.order_by("created_at")] == ["meningioma", "pituitary"]


def test_the_doctor_brightens_and_contrasts_the_scan_but_not_its_overlays(world, analysed_scan, new_page):
    doctor = open_case(new_page, world, analysed_scan)
    scan_image = doctor.locator("#viewer img.scan")
    doctor.get_by_role("slider", name="Contrast").fill("200")
    doctor.get_by_role("slider", name="Brightness").fill("150")
    assert scan_image.evaluate("img => img.style.filter") == "brightness(1.5) contrast(2)"
    assert doctor.locator("#viewer canvas.outline").evaluate("c => getComputedStyle(c).filter") == "none"
    doctor.get_by_role("button", name="As stored").click()
    assert scan_image.evaluate("img => img.style.filter") == ""
    assert doctor.get_by_role("slider", name="Contrast").input_value() == "100"
