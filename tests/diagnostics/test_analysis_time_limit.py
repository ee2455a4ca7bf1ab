"""A real worker whose analysis time limit is short: a scan that runs past it is stopped and failed with a
reason a patient can read, and the same worker goes on to finish the next scan. A hung analysis must not
hold a hospital's diagnostics worker until the broker redelivers it."""

import gzip
import time

import numpy as np
import pytest

from diagnostics.models.scans import Diagnosis, Scan
from tests.diagnostics import samples
from tests.diagnostics.conftest import running_worker
from tests.diagnostics.helpers import upload

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TIME_LIMIT_S = 3
# Each slice takes tens of milliseconds through the models on two CPU cores, so this volume needs
# several times the limit; a single image needs a small fraction of it.
LONG_VOLUME_SLICES = 300


@pytest.fixture(scope="module")
def hasty_worker(django_db_setup, django_db_blocker, live_media_root, tmp_path_factory):
    for worker in running_worker(django_db_blocker, live_media_root, tmp_path_factory.mktemp("hasty-worker"),
                                 ANALYSIS_TIME_LIMIT_S=TIME_LIMIT_S):
        # Models loaded first (a pool process loads them as it starts): the limit must stop the analysis
        # itself, not a load that the next scan would then have to start over within the same limit.
        deadline = time.monotonic() + 120
        while "loaded in" not in worker.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "loaded in" in worker.log(), worker.log()
        yield worker


def long_volume() -> bytes:
    """A NIfTI volume of real slices, halved to 256 px so that it stays under the upload limit."""
    import nibabel as nib

    slices = [np.rot90(samples.slice_array("glioma", i % 40)[::2, ::2], k=-1) for i in range(LONG_VOLUME_SLICES)]
    image = nib.Nifti1Image(np.stack(slices, axis=-1).astype(np.int16), affine=np.diag([0.9, 0.9, 4.0, 1.0]))
    return gzip.compress(image.to_bytes(), compresslevel=1)


def finished(scan_id, worker, timeout: float = 240) -> Scan:
    scan = Scan.objects.get(pk=scan_id)
    deadline = time.monotonic() + timeout
    while scan.status not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        scan.refresh_from_db()
    assert scan.status in ("done", "failed"), worker.log()
    return scan


@pytest.fixture
def hasty_limits(settings):
    """What a web process configured with ANALYSIS_TIME_LIMIT_S stamps on the tasks it queues."""
    settings.ANALYSIS_TIME_LIMIT_S = TIME_LIMIT_S


def test_an_analysis_past_its_time_limit_fails_its_scan_and_the_worker_takes_the_next(
        world, api, active_model, shared_media_root, hasty_worker, hasty_limits):
    client = api(world.owner)
    response = upload(client, world.a, long_volume(), "volume.nii.gz")
    assert response.status_code == 201, response.content
    assert response.json()["slice_count"] == LONG_VOLUME_SLICES

    stopped = finished(response.json()["id"], hasty_worker)

    assert stopped.status == "failed" and stopped.failure_code == "timed_out", (stopped.failure_code,
                                                                                 hasty_worker.log())
    assert stopped.failure_reason.startswith("The analysis took too long and was stopped")
    assert stopped.attempts == 1  # not retried: the same file would hang again
    assert not Diagnosis.objects.filter(scan=stopped).exists()
    assert "analysis stopped after 3 s" in hasty_worker.log()

    response = upload(client, world.a, samples.jpeg_bytes("glioma", 3))
    assert response.status_code == 201, response.content
    assert finished(response.json()["id"], hasty_worker).status == "done", hasty_worker.log()


def test_an_analysis_ended_at_its_hard_limit_fails_its_scan_at_once(
        world, api, active_model, shared_media_root, hasty_worker, monkeypatch):
    """An analysis stuck inside a native call never sees the soft limit; the hard limit then ends its pool
    process. A message that carries only the hard limit stands for that case here."""
    from diagnostics import services
    from diagnostics.tasks import analyse_scan

    def enqueue_with_only_a_hard_limit(scan_id) -> bool:
        analyse_scan.apply_async((str(scan_id),), time_limit=TIME_LIMIT_S)
        return True

    monkeypatch.setattr(services, "enqueue_analysis", enqueue_with_only_a_hard_limit)
    client = api(world.owner)
    response = upload(client, world.a, long_volume(), "volume.nii.gz")
    assert response.status_code == 201, response.content

    # Well before requeue_scans would look at it: the worker's main process fails it itself.
    stopped = finished(response.json()["id"], hasty_worker, timeout=60)

    assert stopped.status == "failed" and stopped.failure_code == "timed_out", (stopped.failure_code,
                                                                                 hasty_worker.log())
    assert stopped.failure_reason.startswith("The analysis took too long and was stopped")
    assert stopped.attempts == 1
    assert not Diagnosis.objects.filter(scan=stopped).exists()
    assert f"Hard time limit ({TIME_LIMIT_S}s) exceeded" in hasty_worker.log()

    # The pool replaced the process it ended, and the replacement analyses the next scan.
    monkeypatch.undo()
    response = upload(client, world.a, samples.jpeg_bytes("glioma", 3))
    assert response.status_code == 201, response.content
    assert finished(response.json()["id"], hasty_worker).status == "done", hasty_worker.log()
