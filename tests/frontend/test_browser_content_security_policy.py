"""The pages work under the Content-Security-Policy (neurofed/csp.py): nothing the viewer, its overlays or
the live updates do is refused, so a refusal on a real page means an attack, or a change that broke the
rule (no inline script, handler or style)."""

import pytest

from diagnostics import services
from tests.diagnostics.helpers import finish
from tests.factories import PASSWORD, make_user
from tests.frontend.conftest import PHONE, open_case, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_leftover_tasks")]

# Chromium fires securitypolicyviolation on the document for each refusal (and logs it to the console).
WATCH = """window.refusals = [];
document.addEventListener("securitypolicyviolation",
  (event) => window.refusals.push(`${event.effectiveDirective} ${event.blockedURI}`));"""


def watched(page):
    """The page, recording console errors about the policy and the refusals its document reports."""
    page.context.add_init_script(WATCH)
    page.console_refusals = []
    page.on("console", lambda message: page.console_refusals.append(message.text)
            if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text else None)
    return page


def watched_pages(new_page):
    """new_page, each page it makes watched (open_case makes its own)."""
    return lambda *args, **kwargs: watched(new_page(*args, **kwargs))


def assert_nothing_refused(page):
    assert page.evaluate("window.refusals") == []
    assert page.console_refusals == []


# Reviewed before `new_page` in the test's arguments: once Chromium runs, the review's push is refused.
@pytest.fixture
def confirmed(world, queued_scan):
    finish(queued_scan, "glioma", 0.91)
    queued_scan.refresh_from_db()
    services.review_scan(hospital=world.a, scan=queued_scan, reviewer=world.doctor_a, label="glioma")
    return queued_scan


def test_the_injected_inline_script_is_refused(world, new_page):
    """The policy is in force on a page: a script slipped into it does not run, and the refusal is seen."""
    page = watched(new_page())
    sign_in(page, world.doctor_a, PASSWORD)
    page.evaluate("""() => { const div = document.createElement("div");
      div.innerHTML = '<img src="/missing.png" onerror="window.injected = true">'
        + '<span style="color: red">x</span>';
      document.body.append(div); }""")
    page.wait_for_function("() => window.refusals.length >= 2")
    assert page.evaluate("window.injected") is None
    assert {refusal.split()[0] for refusal in page.evaluate("window.refusals")} >= {"script-src-attr", "style-src-attr"}


def test_the_doctors_case_viewer_runs_under_the_policy(world, analysed_scan, new_page):
    doctor = open_case(watched_pages(new_page), world, analysed_scan)
    doctor.locator("#live-state").get_by_text("Live updates on").wait_for()  # the socket was allowed
    bars = doctor.locator("#ai-body .probs .bar span")
    assert bars.first.evaluate("bar => bar.style.width") == "91%"  # set through the style property
    outline = doctor.locator("canvas.outline")
    outline.wait_for()
    box = outline.bounding_box()
    doctor.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.7)
    doctor.mouse.down()
    doctor.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.7)
    doctor.mouse.up()
    assert "Outline corrected" in doctor.locator("#mask-state").inner_text()
    doctor.get_by_role("button", name="Zoom in").click()
    assert "scale(1.25)" in doctor.locator("#viewer .stage").get_attribute("style")
    doctor.locator("#show-heatmap").check()
    doctor.locator("img.heatmap").wait_for(state="visible")
    doctor.wait_for_function("() => document.querySelector('img.heatmap').complete")
    assert doctor.locator("img.heatmap").evaluate("img => img.naturalWidth") > 0
    doctor.get_by_label("Heatmap opacity").fill("80")
    doctor.locator("#scan-contrast").fill("150")
    assert "contrast(1.5)" in doctor.locator("img.scan").evaluate("img => img.style.filter")
    doctor.keyboard.press("Control+Enter")
    doctor.get_by_text("outline corrected.").first.wait_for()
    assert_nothing_refused(doctor)


def test_the_patients_result_with_its_overlays_runs_under_the_policy(world, confirmed, new_page):
    patient = watched(new_page(PHONE))
    sign_in(patient, world.owner, PASSWORD)
    patient.goto(f"/h/st-anne/scans/{confirmed.id}/")
    patient.locator("#result-label").wait_for()
    patient.locator("canvas.outline").wait_for(state="visible")
    patient.get_by_label("Show heatmap").check()
    patient.locator("img.heatmap").wait_for(state="visible")
    patient.wait_for_function("() => document.querySelector('img.heatmap').complete")
    assert patient.locator("img.heatmap").evaluate("img => img.naturalWidth") > 0
    patient.get_by_label("Show outline").uncheck()
    assert not patient.locator("canvas.outline").is_visible()
    assert_nothing_refused(patient)



def test_the_operators_admin_and_the_api_pages_run_under_the_policy(world, new_page):
    """The Django admin needs no exception; Swagger UI starts from a script file; DRF's browsable API is
    allowed its inline styles (never scripts)."""
    operator = make_user("operator@neurofed.example", is_superuser=True, is_staff=True)
    page = watched(new_page())
    page.goto("/admin/login/")
    page.locator("#id_username").fill(operator.email)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    page.get_by_role("heading", name="Site administration").wait_for()
    page.goto("/admin/auth/user/")
    page.locator("#action-toggle").check()
    page.locator(".action-counter").get_by_text("1 of 1 selected").wait_for()
    page.goto(f"/admin/auth/user/{operator.pk}/change/")
    page.locator("#calendarlink0").click()
    page.locator("#calendarbox0").wait_for(state="visible")
    assert_nothing_refused(page)

    page.goto("/api/docs/")
    page.locator(".opblock").first.wait_for()
    page.goto("/api/v1/me/")
    page.get_by_text(operator.email).first.wait_for()
    assert_nothing_refused(page)
