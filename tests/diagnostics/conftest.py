"""Real processes for integration tests: a Celery worker and a daphne ASGI server.

Reuse (frontend, federation): both fixtures are plain pytest fixtures with no dependency on the
diagnostics app beyond its queue name, so they can be imported into a conftest.py
(`from tests.diagnostics.conftest import celery_worker_process, asgi_server, live_media_root`) or moved
to tests/conftest.py as they are. Tests that use them must use `transactional_db` (rows must be
committed for another process to see them) and `live_media_root` (the processes and the test must
share one MEDIA_ROOT for encrypted blobs).

- `celery_worker_process`: `celery -A neurofed worker -Q diagnostics --concurrency 1 --pool prefork`,
  without `-l`, as README.md starts it in production (so its log holds what production's does),
  pointed at pytest-django's test database and the test run's Redis, its queue purged first. The
  object has `.kill()` (SIGKILL to the whole process group, like a crashed machine), `.restart()`,
  `.log()` and `.pids()`. Module-scoped: a worker loads TensorFlow and the models once per module.
- `asgi_server`: `daphne neurofed.asgi:application` on a free port; `.url`, `.ws_url`, `.pid`.
- `active_model`: an active classifier and segmenter in the registry, for the worker to load: the
  trained bundles installed in MODEL_DIR when there are any, else tiny untrained networks exported by
  the ML core's own functions (built once per session, see bundles.py).

Ports: a free port chosen by the OS, or one from NEUROFED_TEST_PORTS ("8200-8299") when set, so that
engineers who share a machine can keep to their own range.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
PYTHON_BIN = Path(sys.executable).parent


def free_port() -> int:
    span = os.environ.get("NEUROFED_TEST_PORTS", "")
    candidates = [0]
    if span:
        low, high = (int(part) for part in span.split("-"))
        candidates = list(range(low, high + 1))
        # Spread concurrent runs over the range instead of all racing for its first port.
        offset = (os.getpid() * 7) % len(candidates)
        candidates = candidates[offset:] + candidates[:offset]
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError(f"no free port in {span}")


def test_database_url() -> str:
    """DATABASE_URL of the database this test run uses (pytest-django's test_* copy)."""
    s = connection.settings_dict
    auth = quote(s["USER"] or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def process_environment(media_root: Path, **extra) -> dict:
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("worker and server processes need DATABASE_URL (PostgreSQL) and REDIS_URL")
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        MEDIA_ROOT=str(media_root),
        DJANGO_SETTINGS_MODULE="neurofed.settings",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
        # Pooled connections would outlive pytest-django's flush between tests; open one per use.
        DB_CONN_MAX_AGE="0",
        # Runs and nodes take the handful of cases a test seeds, as in tests/conftest.py's _small_federations.
        FEDERATION_MIN_NODE_CASES="1",
        PATH=f"{PYTHON_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.update({key: str(value) for key, value in extra.items()})
    return env


def _stop(process: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 20) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@pytest.fixture(scope="session")
def model_bundles(tmp_path_factory) -> dict[str, Path] | None:
    """None when trained bundles are installed in MODEL_DIR (the registry activates those itself)."""
    if (Path(settings.MODEL_DIR) / "classifier.json").exists():
        return None
    from tests.diagnostics.bundles import build_tiny_bundles

    return build_tiny_bundles(tmp_path_factory.mktemp("model-bundles"))


@pytest.fixture
def active_model(model_bundles):
    """{task: ModelVersion} now active; use with a database fixture or marker."""
    from diagnostics import registry

    if model_bundles is None:
        return {task: registry.active_model_version(task) for task in ("classify", "segment")}
    versions = {}
    for task, bundle in model_bundles.items():
        version = registry.register_model_version(task=task, version=f"test-{uuid.uuid4().hex[:8]}",
                                                  artifact_path=bundle, notes="tiny untrained network for tests")
        versions[task] = registry.promote_model_version(version)
    return versions


@pytest.fixture(scope="module")
def live_media_root(tmp_path_factory):
    return tmp_path_factory.mktemp("live-media")


@pytest.fixture
def shared_media_root(settings, live_media_root):
    """Point this test's MEDIA_ROOT at the one the worker and server processes use."""
    settings.MEDIA_ROOT = live_media_root
    return live_media_root


def purge_queues(*queues: str) -> None:
    """Drop tasks, and unacknowledged deliveries, left in the broker by an earlier run."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(*queues, "unacked", "unacked_index", "unacked_mutex")


def purge_diagnostics_queue() -> None:
    purge_queues("diagnostics")


class WorkerProcess:
    """`queues` for its -Q; `loglevel` for its -l, None to start it without one, as production does."""

    def __init__(self, env: dict, log_dir: Path, queues=("diagnostics",), loglevel=None):
        self.env, self.log_dir = env, log_dir
        self.queues, self.loglevel = tuple(queues), loglevel
        self.process = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"worker-{self.starts}.log"

    def start(self, timeout: float = 120) -> None:
        from neurofed.celery import app

        self.starts += 1
        self.hostname = f"diag-{uuid.uuid4().hex[:8]}@%h"
        command = [str(PYTHON_BIN / "celery"), "-A", "neurofed", "worker", "-Q", ",".join(self.queues),
                   "--concurrency", "1", "--pool", "prefork", "-n", self.hostname, "--without-gossip",
                   "--without-mingle", "--without-heartbeat"]
        if self.loglevel:
            command += ["--loglevel", self.loglevel]
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        name = self.hostname.replace("%h", socket.gethostname())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.log()}")
            if app.control.ping(destination=[name], timeout=1.0):
                return
        raise RuntimeError(f"worker did not answer a ping within {timeout}s:\n{self.log()}")

    def pids(self) -> list[int]:
        """The worker's main process and its pool children."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        extra = [int(pid) for pid in children.read_text().split()] if children.exists() else []
        return [self.process.pid, *extra]

    def kill(self) -> None:
        """SIGKILL to the worker and its pool at once: no warm shutdown, no acknowledgement."""
        _stop(self.process, signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""


def running_worker(django_db_blocker, live_media_root, log_dir, *, queues=("diagnostics",), loglevel=None,
                   **settings_env):
    """A started worker on the test database (a diagnostics one unless `queues` says otherwise), with
    these extra environment settings, for a fixture to ``yield from``; stopped, and its queues emptied,
    when the fixture ends."""
    with django_db_blocker.unblock():
        env = process_environment(live_media_root, **settings_env)
    purge_queues(*queues)
    worker = WorkerProcess(env, log_dir, queues, loglevel)
    worker.start()
    yield worker
    worker.stop()
    purge_queues(*queues)


# How long the broker waits before redelivering a task whose worker died without acknowledging it: seconds
# here, so a killed worker's task comes back within a test (production's is an hour: platform/celery.py).
VISIBILITY_TIMEOUT_S = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT") or "8")


@pytest.fixture(scope="module")
def celery_worker_process(django_db_setup, django_db_blocker, live_media_root, tmp_path_factory):
    yield from running_worker(django_db_blocker, live_media_root, tmp_path_factory.mktemp("worker"),
                              CELERY_VISIBILITY_TIMEOUT=VISIBILITY_TIMEOUT_S)


class ServerProcess:
    def __init__(self, process, port, log_path):
        self.process, self.port, self.log_path = process, port, log_path
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


@pytest.fixture(scope="module")
def asgi_server(django_db_setup, django_db_blocker, live_media_root, tmp_path_factory):
    with django_db_blocker.unblock():
        env = process_environment(live_media_root)
    port = free_port()
    log_path = tmp_path_factory.mktemp("asgi") / "daphne.log"
    command = [str(PYTHON_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "neurofed.asgi:application"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}:\n{log_path.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    else:
        _stop(process)
        raise RuntimeError(f"daphne did not listen on {port}:\n{log_path.read_text()}")
    server = ServerProcess(process, port, log_path)
    yield server
    _stop(process)
