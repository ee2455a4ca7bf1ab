"""Case page: the outline a doctor saves is the one on screen, drawn over the outline that stands.

Two doctors correcting one scan: a colleague's outline saved while this doctor draws must not be
replaced, unseen, by strokes drawn over the outline theirs replaced. And strokes still on screen are
saved, whatever undo's history has dropped.
"""

import io

import numpy as np
import pytest
from PIL import Image

from diagnostics import services
from hospitals.storage import read_blob
from tests.frontend.conftest import in_other_thread, open_case

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_leftover_tasks")]


def stroke(page, y, x0, x1):
    box = page.locator("canvas.outline").bounding_box()
    page.mouse.move(box["x"] + box["width"] * x0, box["y"] + box["height"] * y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * x1, box["y"] + box["height"] * y, steps=6)
    page.mouse.up()


def outline_on_canvas_at(page, fx, fy) -> bool:
    return page.evaluate("""([fx, fy]) => {
        const c = document.querySelector('canvas.outline');
        return c.getContext('2d').getImageData(Math.floor(c.width * fx), Math.floor(c.height * fy), 1, 1).data[3] > 0;
    }""", [fx, fy])


def standing_outline(scan) -> np.ndarray:
    review = services.standing_outline_correction(scan)
    png = read_blob(scan.hospital, review.mask_path, record_type=services.REVIEW_MASK_BLOB, record_id=review.id,
                    sha256=review.mask_sha256)
    return np.asarray(Image.open(io.BytesIO(png))) > 0


def colleagues_outline(scan) -> bytes:
    """A region low on the left, where the software outlined nothing."""
    theirs = np.zeros((scan.height, scan.width), np.uint8)
    theirs[int(scan.height * 0.40):int(scan.height * 0.50), int(scan.width * 0.10):int(scan.width * 0.30)] = 255
    return services.encode_png(theirs)


def theirs_kept(scan) -> bool:
    return bool(standing_outline(scan)[int(scan.height * 0.45), int(scan.width * 0.20)])


def test_a_colleagues_outline_arriving_under_unsaved_strokes_is_offered_and_never_undone(world, analysed_scan,
                                                                                         new_page):
    scan = analysed_scan
    doctor = open_case(new_page, world, scan)
    stroke(doctor, 0.70, 0.60, 0.80)
    in_other_thread(lambda: services.review_scan(hospital=world.a, scan=scan, reviewer=world.doctor_a2,
                                                 label="glioma", mask_png=colleagues_outline(scan),
                                                 last_review_seen=""))
    message = doctor.locator("#review-message")
    message.get_by_text("with a corrected outline").wait_for()
    assert not outline_on_canvas_at(doctor, 0.20, 0.45)  # the doctor's strokes stay until they choose

    # Saved anyway, the strokes drawn over the software's outline are refused; the colleague's stands.
    doctor.locator("#review-submit").click()
    message.locator(".notice.error").wait_for()
    assert "load their outline" in message.inner_text()
    assert scan.reviews.count() == 1 and theirs_kept(scan)

    message.get_by_role("button", name="Load their outline").click()
    message.get_by_text("Their outline is loaded").wait_for()
    assert outline_on_canvas_at(doctor, 0.20, 0.45)
    assert doctor.locator("#mask-state").inner_text() == "Outline unchanged."
    stroke(doctor, 0.70, 0.60, 0.80)  # corrected on top of theirs, saved
    doctor.locator("#review-submit").click()
    message.locator(".notice.ok").wait_for()
    assert "outline corrected" in message.inner_text()
    assert scan.reviews.count() == 2 and theirs_kept(scan)


def test_after_a_save_refused_for_a_colleagues_outline_saving_again_does_not_undo_it(world, analysed_scan,
                                                                                     new_page):
    scan = analysed_scan
    doctor = open_case(new_page, world, scan)
    stroke(doctor, 0.70, 0.60, 0.80)

    def colleague_saves_first(route):
        in_other_thread(lambda: services.review_scan(hospital=world.a, scan=scan, reviewer=world.doctor_a2,
                                                     label="glioma", mask_png=colleagues_outline(scan)))
        route.continue_()

    doctor.route("**/review/", colleague_saves_first, times=1)
    message = doctor.locator("#review-message")
    doctor.locator("#review-submit").click()
    message.locator(".notice.error").wait_for()
    doctor.locator("#reviews li").first.wait_for()
    message.get_by_role("button", name="Load their outline").wait_for()
    # As the refusal invites, the doctor saves again without loading the colleague's outline: refused again.
    # (The first refusal's words are still on screen: the second is known by its answer.)
    with doctor.expect_response("**/review/") as second:
        doctor.locator("#review-submit").click()
    assert second.value.status == 409 and second.value.json()["error"] == "outline_conflict"
    message.get_by_role("button", name="Load their outline").wait_for()
    assert scan.reviews.count() == 1 and theirs_kept(scan)


def test_strokes_still_on_screen_after_undo_ran_out_of_history_are_saved(world, analysed_scan, new_page):
    scan = analysed_scan
    doctor = open_case(new_page, world, scan)
    # 35 strokes, then 30 undos: undo keeps 30 steps, so the first five strokes stay on screen.
    for i in range(35):
        stroke(doctor, 0.55 + i * 0.012, 0.70, 0.75)
    doctor.locator("#viewer").focus()
    for _ in range(30):
        doctor.keyboard.press("z")
    assert outline_on_canvas_at(doctor, 0.72, 0.55)
    assert doctor.locator("#mask-state").inner_text().startswith("Outline corrected")
    doctor.locator("#review-submit").click()
    doctor.locator("#review-message .notice.ok").wait_for()
    review = scan.reviews.get()
    assert review.mask_changed and standing_outline(scan)[int(scan.height * 0.556), int(scan.width * 0.72)]


def test_strokes_on_a_case_whose_outline_the_page_cannot_show_are_not_saved_over_it(world, live, new_page):
    """An imported case has no software result to draw its outline from: strokes on the empty canvas
    would replace an outline nobody on this page has seen."""
    from diagnostics.training_data import create_reviewed_case
    from tests.diagnostics import samples
    from tests.factories import PASSWORD
    from tests.frontend.conftest import sign_in

    image, mask, label = samples.figshare_case(1)
    imported = create_reviewed_case(world.a, image, label, mask=mask, reviewer=world.doctor_a2)
    page = new_page()
    sign_in(page, world.doctor_a, PASSWORD)
    page.goto(f"/h/st-anne/scans/{imported.pk}/")
    page.locator("#reviews li").first.wait_for()
    stroke(page, 0.70, 0.60, 0.80)
    page.locator(f'input[name="label"][value="{label}"]').check()
    page.locator("#review-submit").click()
    page.locator("#review-message").get_by_text("cannot be corrected here").wait_for()
    assert imported.reviews.count() == 1


def test_the_outline_cannot_be_drawn_on_before_it_has_loaded(world, analysed_scan, new_page):
    """Strokes drawn while the outline's PNG was on its way were wiped when it came, while the page said they
    would be sent with the diagnosis: the socket's first refresh showed the outline before it had loaded."""
    from tests.factories import PASSWORD
    from tests.frontend.conftest import sign_in

    doctor = new_page()
    sign_in(doctor, world.doctor_a, PASSWORD)
    held = []
    doctor.route("**/mask.png?*", lambda route: held.append(route))
    with doctor.expect_response(lambda response: response.url.endswith(f"/scans/{analysed_scan.id}/")):
        doctor.goto(f"/h/st-anne/scans/{analysed_scan.id}/", wait_until="domcontentloaded")  # then the refresh
    doctor.wait_for_timeout(500)
    outline = doctor.locator("canvas.outline")
    assert held and outline.is_hidden()
    for route in held:
        route.continue_()
    doctor.unroute("**/mask.png?*")
    outline.wait_for()
    assert outline.get_attribute("aria-label") != "No outline"
    stroke(doctor, 0.70, 0.60, 0.80)
    doctor.locator("#review-submit").click()
    saved = doctor.locator("#review-message .notice.ok")
    saved.wait_for()
    assert saved.inner_text() == "Saved: Glioma confirmed, outline corrected."


def test_of_two_outline_reloads_the_newer_outline_and_its_basis_are_kept_whichever_answers_last(world,
                                                                                                analysed_scan,
                                                                                                new_page):
    """A colleague confirms, then corrects the outline; the first reload's PNG comes last. The outline shown
    is the correction, and a stroke on it is sent as based on it: not refused as drawn over the replaced one."""
    import time

    scan = analysed_scan
    doctor = open_case(new_page, world, scan)
    doctor.locator("canvas.outline").wait_for()
    held = []
    doctor.route("**/mask.png?*", lambda route: route.continue_() if held else held.append(route))
    in_other_thread(lambda: services.review_scan(hospital=world.a, scan=scan, reviewer=world.doctor_a2,
                                                 label="glioma", last_review_seen=""))
    deadline = time.monotonic() + 20
    while not held and time.monotonic() < deadline:
        doctor.wait_for_timeout(50)
    assert held, "the page did not reload the outline"
    confirmed = scan.reviews.get()
    in_other_thread(lambda: services.review_scan(hospital=world.a, scan=scan, reviewer=world.doctor_a2,
                                                 label="glioma", mask_png=colleagues_outline(scan),
                                                 last_review_seen=str(confirmed.id)))
    doctor.locator("canvas.outline").wait_for()  # the newer reload has landed
    held[0].continue_()
    doctor.wait_for_timeout(500)
    assert outline_on_canvas_at(doctor, 0.20, 0.45)
    stroke(doctor, 0.70, 0.60, 0.80)
    with doctor.expect_response("**/review/") as answer:
        doctor.locator("#review-submit").click()
    assert answer.value.status == 201, answer.value.json()


def test_a_keyboard_user_keeps_the_focus_on_the_outline_editor_through_a_reload(world, analysed_scan, new_page):
    doctor = open_case(new_page, world, analysed_scan)
    canvas = doctor.locator("canvas.outline")
    canvas.wait_for()
    canvas.focus()
    doctor.keyboard.press("ArrowLeft")  # moving the brush, nothing painted
    in_other_thread(lambda: services.review_scan(hospital=world.a, scan=analysed_scan, reviewer=world.doctor_a2,
                                                 label="meningioma"))
    doctor.locator("#reviews").get_by_text("Meningioma (was Glioma)").wait_for()
    doctor.wait_for_function("() => !document.querySelector('canvas.outline').hidden")
    assert doctor.evaluate("() => document.activeElement.matches('canvas.outline')")


def _colleague_reviews_during_a_keyboard_stroke(doctor, world, scan, **review):
    """The doctor holds Space on the outline editor, brush moving, while a colleague saves a review (a
    glioma, with `review`'s outline and last review seen); Space is still held when this returns."""
    canvas = doctor.locator("canvas.outline")
    canvas.wait_for()
    canvas.focus()
    doctor.keyboard.down(" ")
    doctor.keyboard.press("ArrowLeft")
    in_other_thread(lambda: services.review_scan(hospital=world.a, scan=scan, reviewer=world.doctor_a2,
                                                 label="glioma", **review))


def test_a_stroke_being_drawn_when_a_colleagues_review_arrives_is_kept_and_sent(world, analysed_scan, new_page):
    """The outline is not reloaded under a stroke under way (Space held): it would wipe it, while the page then
    said it would be sent."""
    doctor = open_case(new_page, world, analysed_scan)
    _colleague_reviews_during_a_keyboard_stroke(doctor, world, analysed_scan)
    doctor.locator("#reviews li").first.wait_for()
    doctor.wait_for_timeout(500)
    doctor.keyboard.press("ArrowLeft")
    doctor.keyboard.up(" ")
    assert "it is sent with your diagnosis" in doctor.locator("#mask-state").inner_text()
    doctor.locator("#review-submit").click()
    saved = doctor.locator("#review-message .notice.ok")
    saved.wait_for()
    assert saved.inner_text() == "Saved: Glioma confirmed, outline corrected."


def test_a_colleagues_outline_arriving_during_a_stroke_is_announced_with_theirs_to_load(world, analysed_scan,
                                                                                      new_page):
    """The outline is not reloaded under a stroke under way; the doctor is told theirs replaced the one
    under the stroke, as for strokes already finished, rather than find out by a refused save."""
    scan = analysed_scan
    doctor = open_case(new_page, world, scan)
    _colleague_reviews_during_a_keyboard_stroke(doctor, world, scan, mask_png=colleagues_outline(scan),
                                                last_review_seen="")
    message = doctor.locator("#review-message")
    message.get_by_role("button", name="Load their outline").wait_for()
    assert "saved a review meanwhile: Glioma, with a corrected outline" in message.inner_text()
    doctor.keyboard.press("ArrowLeft")
    doctor.keyboard.up(" ")
    message.get_by_role("button", name="Load their outline").click()
    message.get_by_text("Their outline is loaded").wait_for()
    assert outline_on_canvas_at(doctor, 0.20, 0.45)


def test_strokes_over_an_outline_that_failed_to_load_are_not_sent_as_a_correction_of_it(world, analysed_scan,
                                                                                       new_page):
    """A colleague's outline whose PNG did not load leaves the viewer empty: strokes drawn there would have
    been sent as based on the outline that stands, which the doctor never saw."""
    scan = analysed_scan
    doctor = open_case(new_page, world, scan)
    doctor.locator("canvas.outline").wait_for()
    doctor.route("**/mask.png?*", lambda route: route.abort())
    in_other_thread(lambda: services.review_scan(hospital=world.a, scan=scan, reviewer=world.doctor_a2,
                                                 label="glioma", mask_png=colleagues_outline(scan),
                                                 last_review_seen=""))
    doctor.locator("#reviews").get_by_text("outline corrected").wait_for()
    doctor.locator("canvas.outline").wait_for()  # shown again, empty, once the load has failed
    posted = []
    doctor.on("request", lambda request: posted.append(request.url) if request.method == "POST" else None)
    stroke(doctor, 0.70, 0.60, 0.80)
    doctor.locator("#review-submit").click()
    refusal = doctor.locator("#review-message .notice.error")
    refusal.wait_for()
    assert "cannot be corrected here" in refusal.inner_text() and posted == []
    assert scan.reviews.count() == 1 and theirs_kept(scan)
