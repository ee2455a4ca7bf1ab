"""Browser-test fixtures: headless Debian chromium driven by Playwright, against a live daphne server
and a real Celery worker.

The server and worker processes are the diagnostics tests' fixtures (tests/diagnostics/conftest.py),
reused here: subprocesses on pytest-django's test database, so a browser test runs with
`transactional_db` and the shared media root (the `live` fixture arranges both).
"""

import os
import shutil
import threading
from pathlib import Path

import pytest
from django.db import connections

from diagnostics.models import Scan
from tests.diagnostics.conftest import (  # noqa: F401 (fixtures)
    active_model,
    asgi_server,
    celery_worker_process,
    live_media_root,
    model_bundles,
    shared_media_root,
)
from tests.diagnostics.conftest import purge_diagnostics_queue
from tests.diagnostics.helpers import finish, upload
from tests.diagnostics.samples import jpeg_bytes
from tests.factories import PASSWORD

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"

# What the task asks of Debian's chromium: no GPU, no network chatter, no sandbox (runs as root in CI).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def no_leftover_tasks():
    """For a module whose uploads queue analyses that no worker of the module takes: leave the broker clean.
    Use it with `pytest.mark.usefixtures("no_leftover_tasks")` in the module's pytestmark."""
    yield
    purge_diagnostics_queue()


@pytest.fixture
def live(asgi_server, shared_media_root, transactional_db):
    """The base URL of the live server; rows and blobs the test makes are visible to it."""
    return asgi_server.url


@pytest.fixture
def new_page(live):
    """new_page(viewport=DESKTOP, **context_options): a page in a fresh context (own cookies), with the live
    URL as base; context_options go to Playwright's new_context (timezone_id, locale, ...).

    Chromium starts per test, after the server and worker: Playwright's sync API runs an event loop in
    this thread, which Django takes for async code, so DJANGO_ALLOW_ASYNC_UNSAFE is set only while the
    browser runs (the test's ORM calls are plain synchronous ones) and never reaches the subprocesses.
    """
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed: run `make browser`")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)

    def make(viewport=DESKTOP, **context_options):
        context = chromium.new_context(base_url=live, viewport=viewport, **context_options)
        context.set_default_timeout(20_000)
        return context.new_page()

    try:
        yield make
    finally:
        # The test's ORM calls ran beside Playwright's loop, on connections the database teardown
        # cannot see: left open, they keep PostgreSQL from dropping the test database.
        connections.close_all()
        chromium.close()
        playwright.stop()
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def in_other_thread(work):
    """Run work() in a fresh thread and return its result.

    The test's own thread runs Playwright's event loop, where the channel layer's sync wrapper refuses
    to run; a worker or ServerApp process has no such loop, and neither has a fresh thread.
    """
    from django.db import connection

    outcome = {}

    def run():
        try:
            outcome["value"] = work()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def sign_in(page, user, password):
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_fits_width(page) -> None:
    """Nothing on the page is wider than the viewport (no sideways scrolling on a phone)."""
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"page is {widths[0]}px wide in a {widths[1]}px viewport"


# Made before `new_page` in a test's arguments: once Chromium runs, this thread has an event loop, and
# the pushes that uploads send through the channel layer would be refused.
@pytest.fixture
def queued_scan(live, world, api):
    """Patient A1's upload, queued (no worker runs it)."""
    response = upload(api(world.owner), world.a, jpeg_bytes("pituitary", 0))
    assert response.status_code == 201, response.content
    return Scan.objects.get(pk=response.json()["id"])


@pytest.fixture
def analysed_scan(queued_scan):
    """The queued scan, analysed as glioma (0.91) with a known outline (rows 10-30, columns 20-50)."""
    finish(queued_scan, "glioma", 0.91)
    return queued_scan


@pytest.fixture
def analysed_volume(live, world, api):
    """Patient A1's five-slice NIfTI volume, analysed as glioma on slice 4 (index 3), found on slices 3-4."""
    from tests.diagnostics.samples import nifti_bytes

    response = upload(api(world.owner), world.a, nifti_bytes("glioma", 5), name="head.nii")
    assert response.status_code == 201, response.content
    scan = Scan.objects.get(pk=response.json()["id"])
    finish(scan, "glioma", 0.88, slice_index=3, tumour_slices=(2, 3))
    return scan


def open_case(new_page, world, scan):
    """Doctor A1 on the case page of `scan`, once the software's glioma is shown and preselected."""
    doctor = new_page()
    sign_in(doctor, world.doctor_a, PASSWORD)
    doctor.goto(f"/h/st-anne/scans/{scan.id}/")
    doctor.locator("#ai-label").wait_for()
    doctor.wait_for_function("() => document.getElementById('review-form').elements.label.value === 'glioma'")
    return doctor
