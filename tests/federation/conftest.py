"""Real Flower processes for the federation tests: a SuperLink and one SuperNode per hospital, on loopback.

The daemons and the app processes they start are separate processes, so they get the test database's
name, the test media folder and the Redis URL through their environment, and the tests that use them
commit their rows (transactional_db) so those processes can see them.
"""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from federation import daemons
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


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


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

    def start_node(self, slug: str):
        self.nodes[slug] = daemons.start_node(self.home, hospital_slug=slug, superlink=self.superlink_address,
                                              runtime_port=_port(), env_extra=self.env)
        return self.nodes[slug]

    def logs(self) -> str:
        out = []
        for path in sorted((self.home / "logs").glob("*.log")):
            out.append(f"===== {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(out)

    def stop(self):
        for node in self.nodes.values():
            node.stop(timeout=5)
        if self.superlink is not None:
            self.superlink.stop(timeout=5)


@pytest.fixture
def federation(transactional_db, settings, tmp_path):
    settings.FEDERATION_HOME = tmp_path / "federation"
    settings.MODEL_DIR = tmp_path / "models"
    env = {
        "DATABASE_URL": _database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "NEUROFED_MODEL_DIR": str(settings.MODEL_DIR),
        "FEDERATION_HOME": str(settings.FEDERATION_HOME),
        # Small deadlines so the failure paths end within the test's time.
        "FEDERATION_NODE_WAIT_S": "15",
        "FEDERATION_PHASE_TIMEOUT_S": "90",
        "OMP_NUM_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
    }
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
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
