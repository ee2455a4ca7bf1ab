"""Browser-test fixtures: a real ASGI server (daphne), a real Celery worker, and headless Chromium.

The server and the worker are subprocesses pointed at pytest-django's test database, so a test that
uses them needs `transactional_db` (rows committed, visible to other processes). They start once per
session; the media root is shared with them through `live_media_root`.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
LOGS = REPO / "artifacts" / "logs"

# What the task asks of Debian's chromium: no GPU, no network chatter, no sandbox (runs as root in CI).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    """A TCP port nobody listens on now; NEUROFED_TEST_PORT pins one when a machine needs a fixed range."""
    pinned = os.environ.get("NEUROFED_TEST_PORT")
    if pinned:
        return int(pinned)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url(db: dict) -> str:
    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgresql://{auth}{host}{port}/{quote(db['NAME'])}"


def subprocess_env(media_root: Path) -> dict:
    """The environment of a server or worker: this test run's database, broker and media, nothing else."""
    db = settings.DATABASES["default"]
    if "postgresql" not in db["ENGINE"]:
        pytest.skip("browser tests need PostgreSQL (set DATABASE_URL): SQLite cannot be shared across processes")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        DJANGO_SETTINGS_MODULE="neurofed.settings",
        DATABASE_URL=_database_url(db),
        # Idle connections of the server would block the TRUNCATE that ends every transactional test.
        DB_CONN_MAX_AGE="0",
        MEDIA_ROOT=str(media_root),
        NEUROFED_TESTING="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def live_media_root(tmp_path_factory):
    return tmp_path_factory.mktemp("live-media")


@pytest.fixture(scope="session")
def asgi_server(django_db_setup, live_media_root):
    """daphne serving neurofed.asgi (HTTP and websockets) on a free port; yields its base URL."""
    LOGS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = LOGS / "daphne.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "neurofed.asgi:application"],
            cwd=REPO, env=subprocess_env(live_media_root), stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, process, log, timeout=90)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, live_media_root):
    """A real Celery worker on every queue, against the test database; ready when it answers a ping."""
    from neurofed.celery import app

    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / "celery-worker.log"
    node = f"browser-tests-{os.getpid()}@%h"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "neurofed", "worker", "-Q", "diagnostics,federation,default",
             "--pool=solo", "--without-gossip", "--without-mingle", "-n", node, "--loglevel=INFO"],
            cwd=REPO, env=subprocess_env(live_media_root), stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        # The worker imports TensorFlow before it answers, which takes a while on a busy machine.
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"worker exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            if app.control.ping(timeout=1.0):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker did not answer within 180s:\n{log.read_text()[-3000:]}")
        yield process
    finally:
        _stop(process)


@pytest.fixture
def live(settings, live_media_root, asgi_server, transactional_db):
    """The base URL of the live server; rows and blobs the test makes are visible to it."""
    settings.MEDIA_ROOT = live_media_root
    return asgi_server


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed: run `make browser`")
    # Playwright's sync API keeps an event loop in this thread, which Django would take for async code;
    # the ORM calls of a test are still plain synchronous calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def new_page(browser, live):
    """new_page(viewport=DESKTOP): a page in a fresh context (own cookies), with the live URL as base."""
    contexts = []

    def make(viewport=DESKTOP):
        context = browser.new_context(base_url=live, viewport=viewport)
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


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
