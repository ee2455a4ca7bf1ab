"""Real Flower processes for the federation tests: a SuperLink and one SuperNode per hospital, on loopback.

The daemons and the app processes they start are separate processes, so they get the test database's
name, the test media folder and the Redis URL through their environment, and the tests that use them
commit their rows (transactional_db) so those processes can see them.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from federation import daemons
from tests.diagnostics.conftest import (  # noqa: F401 - fixtures reused from the pipeline's tests
    asgi_server,
    live_media_root,
    process_environment,
    shared_media_root,
)
from tests.factories import make_hospital

DATA_DIR = Path(settings.NEUROFED_DATA_DIR) / "brain-tumor-mri" / "Training"
CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


def _port() -> int:
    """A free port, from NEUROFED_TEST_PORTS ("8300-8399") when set so parallel runs can keep apart."""
    raw = os.environ.get("NEUROFED_TEST_PORTS", "")
    if raw:
        low, high = (int(p) for p in raw.split("-"))
        return daemons.free_port(range(low, high + 1))
    return daemons.free_port()


class Federation:
    """A loopback federation for one test; everything it started is stopped at the end."""

    def __init__(self, home: Path, env: dict):
        self.home, self.env = home, env
        self.superlink = None
        self.nodes: dict[str, daemons.Daemon] = {}

    @property
    def address(self) -> str:
        return self.superlink_address

    def start_superlink(self, port=None):
        self.port = port or getattr(self, "port", None) or _port()
        self.superlink_address = f"127.0.0.1:{self.port}"
        self.superlink = daemons.start_superlink(self.home, port=self.port, env_extra=self.env)
        return self.superlink

    def start_node(self, slug: str, **env: str):
        """`env`: the node's own settings over the test's, as a hospital's IT would set them."""
        self.nodes[slug] = daemons.start_node(self.home, hospital_slug=slug, superlink=self.superlink_address,
                                              runtime_port=_port(), env_extra={**self.env, **env})
        return self.nodes[slug]

    def logs(self) -> str:
        out = []
        for path in sorted((self.home / "logs").glob("*.log")):
            text = "\n".join(line for line in path.read_text(errors="replace").splitlines()
                             if "list-runs" not in line and "ListRuns" not in line)
            out.append(f"===== {path.name}\n{text[-3000:]}")
        return "\n".join(out)

    def stop(self):
        for node in self.nodes.values():
            node.stop(timeout=5)
        if self.superlink is not None:
            self.superlink.stop(timeout=5)


@pytest.fixture
def federation(transactional_db, shared_media_root, settings, tmp_path):
    settings.FEDERATION_HOME = tmp_path / "federation"
    settings.MODEL_DIR = tmp_path / "models"
    # The test database, Redis and the media folder the test shares with every process it starts.
    env = process_environment(settings.MEDIA_ROOT)
    env.update({
        "NEUROFED_MODEL_DIR": str(settings.MODEL_DIR),
        "FEDERATION_HOME": str(settings.FEDERATION_HOME),
        # Small deadlines so the failure paths end within the test's time.
        "FEDERATION_NODE_WAIT_S": "60",
        "FEDERATION_PHASE_TIMEOUT_S": "300",
        "OMP_NUM_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
    })
    fed = Federation(settings.FEDERATION_HOME, env)
    try:
        yield fed
    finally:
        fed.stop()


def kaggle_files(label: str, count: int, offset: int = 0) -> list[Path]:
    return sorted((DATA_DIR / label).iterdir())[offset:offset + count]


def seed_hospital(slug: str, *, per_class: int, offset: int):
    """An opted-in hospital with `per_class` reviewed cases of each class, read in place from the data."""
    from diagnostics.training_data import create_reviewed_case

    hospital = make_hospital(slug, slug.replace("-", " ").title())
    hospital.federation_opt_in = True
    hospital.save(update_fields=["federation_opt_in"])
    for label in CLASSES:
        for path in kaggle_files(label, per_class, offset):
            create_reviewed_case(hospital, path.read_bytes(), label)
    return hospital


@pytest.fixture
def federation_worker(federation, settings, tmp_path):
    """A real Celery worker on the `federation` queue, so runs started over the API are submitted by it."""
    import redis

    redis.Redis.from_url(settings.REDIS_URL).delete("federation")
    # The worker finds the SuperLink through FEDERATION_HOME (its CLI config), written when one starts.
    env = dict(federation.env, FEDERATION_HOME=str(settings.FEDERATION_HOME))
    log_path = tmp_path / "federation-worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "celery"), "-A", "neurofed", "worker", "-Q", "federation",
             "--concurrency", "1", "--pool", "solo", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=str(daemons.REPO_ROOT))
    worker = daemons.Daemon("federation-worker", process, log_path)
    deadline = time.monotonic() + 60
    while "ready" not in log_path.read_text(errors="replace") and time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text(errors="replace")
        time.sleep(0.3)
    yield worker
    worker.stop(timeout=10)


@pytest.fixture
def no_superlink(settings, tmp_path):
    """A federation home with no SuperLink behind it: a run being followed fails for that after a second."""
    settings.FEDERATION_SUPERLINK_LOST_S = 1
    return tmp_path
