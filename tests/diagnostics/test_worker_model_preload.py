"""Real workers, started as README.md's "Running in production" does: only a worker that takes the
diagnostics queue loads the diagnosis models into its processes. A federation worker's processes never
analyse a scan, and each would otherwise hold the models (hundreds of MB) for nothing."""

import time
from pathlib import Path

import pytest

from tests.diagnostics.conftest import running_worker

pytestmark = [pytest.mark.worker, pytest.mark.slow]

# What a pool process logs once it has tried to load the models (they load or they fail), and what the
# worker's main process logs when it has decided its processes will not.
LOAD_ATTEMPTED = ("loaded in", "could not load the active models")
NOT_LOADING = "does not take the diagnostics queue"


def wait_for_any(worker, texts, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = worker.log_path.read_text(errors="replace")
        if any(text in log for text in texts):
            return log
        time.sleep(0.2)
    raise AssertionError(f"none of {texts} in the worker's log within {timeout}s:\n{worker.log()}")


def maps_tensorflow(pid: int) -> bool:
    return "tensorflow" in Path(f"/proc/{pid}/maps").read_text(errors="replace")


@pytest.fixture
def federation_worker(django_db_setup, django_db_blocker, live_media_root, tmp_path):
    yield from running_worker(django_db_blocker, live_media_root, tmp_path, queues=("federation", "default"),
                              loglevel="INFO")


@pytest.fixture
def mixed_worker(django_db_setup, django_db_blocker, live_media_root, tmp_path):
    yield from running_worker(django_db_blocker, live_media_root, tmp_path, queues=("diagnostics", "default"))


def test_a_worker_without_the_diagnostics_queue_loads_no_models(federation_worker):
    log = wait_for_any(federation_worker, (NOT_LOADING, *LOAD_ATTEMPTED))
    assert NOT_LOADING in log and not any(text in log for text in LOAD_ATTEMPTED), log
    pool = federation_worker.pids()[1:]
    assert pool, "the worker has no pool process"
    assert not any(maps_tensorflow(pid) for pid in pool)


def test_a_worker_taking_diagnostics_among_other_queues_loads_them(mixed_worker):
    log = wait_for_any(mixed_worker, LOAD_ATTEMPTED)
    assert NOT_LOADING not in log
