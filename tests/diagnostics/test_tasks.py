"""The scan state machine and the task's retry-safety (diagnostics/services.py, diagnostics/tasks.py),
run in-process; the real worker process is exercised in test_pipeline_worker.py."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.db import IntegrityError

from diagnostics import services
from diagnostics.models.scans import Diagnosis, Scan, ScanStatus
from diagnostics.tasks import analyse_scan
from tests.diagnostics import samples
from tests.diagnostics.helpers import finish, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def scan(world, api):
    return Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 30)).json()["id"])


def test_task_options_make_it_redelivery_safe():
    assert analyse_scan.acks_late is True
    assert analyse_scan.reject_on_worker_lost is True
    assert analyse_scan.autoretry_for and analyse_scan.retry_backoff
    from neurofed.celery import app

    assert app.amqp.router.route({}, analyse_scan.name)["queue"].name == "diagnostics"


def test_a_finished_scan_is_not_analysed_again(scan):
    diagnosis = finish(scan)
    assert analyse_scan.apply(args=[str(scan.id)]).get() == "already-finished"
    assert Diagnosis.objects.filter(scan=scan).get() == diagnosis


def test_recording_twice_keeps_one_diagnosis(scan):
    first = finish(scan, "glioma")
    again = services.record_diagnosis(scan.id, services.AnalysisResult(
        label="pituitary", probabilities={"glioma": 0.1, "meningioma": 0.1, "notumor": 0.1, "pituitary": 0.7},
        model_version_id=None))
    assert again == first and Diagnosis.objects.filter(scan=scan).count() == 1
    assert Diagnosis.objects.get(scan=scan).label == "glioma"


def test_a_redelivered_task_picks_up_a_processing_scan(scan):
    services.start_analysis(scan.id)
    again = services.start_analysis(scan.id)  # the worker that started it died
    assert again is not None and again.attempts == 2 and again.status == ScanStatus.PROCESSING


def test_state_machine_refuses_going_back(scan):
    finish(scan)
    assert services.start_analysis(scan.id) is None
    assert services.fail_scan(scan.id, "late", "too late").status == ScanStatus.DONE
    scan.refresh_from_db()
    with pytest.raises(ValueError):
        services._transition(scan, ScanStatus.QUEUED)


def test_unreadable_blob_fails_the_scan_with_a_reason(scan, settings):
    (Path(settings.MEDIA_ROOT) / scan.blob_path).unlink()
    assert analyse_scan.apply(args=[str(scan.id)]).get() == "failed"
    scan.refresh_from_db()
    assert scan.status == ScanStatus.FAILED and scan.failure_code == "unreadable_blob" and scan.failure_reason
    assert not Diagnosis.objects.filter(scan=scan).exists()


def test_failed_scan_is_shown_with_its_reason(world, api, scan, settings):
    (Path(settings.MEDIA_ROOT) / scan.blob_path).unlink()
    analyse_scan.apply(args=[str(scan.id)])
    body = api(world.owner).get(f"/api/v1/hospitals/{world.a.slug}/scans/{scan.id}/").json()
    assert body["status"] == "failed" and body["failure"]["code"] == "unreadable_blob"


def test_web_process_does_not_import_tensorflow():
    """The web process decodes uploads with numpy/pydicom/nibabel/PIL only (memory budget 400 MB)."""
    code = (
        "import django, sys; django.setup();"
        "import neurofed.urls, neurofed.asgi, diagnostics.api.views, diagnostics.consumers, diagnostics.tasks;"
        "from django.urls import resolve; resolve('/api/v1/hospitals/x/scans/');"
        "bad = [m for m in ('tensorflow', 'keras', 'ai_edge_litert') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                            env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "neurofed.settings"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_scan_whose_worker_keeps_dying_fails_instead_of_being_redelivered_forever(scan):
    for _ in range(services.MAX_ANALYSIS_ATTEMPTS):
        assert services.start_analysis(scan.id) is not None  # each worker died without a word
    # Retries the task asked for are not crashes.
    assert services.start_analysis(scan.id, retries=1) is not None
    assert analyse_scan.apply(args=[str(scan.id)], retries=1).get() == "already-finished"
    scan.refresh_from_db()
    assert scan.status == ScanStatus.FAILED and scan.failure_code == "analysis_crashed"
    assert "stopped unexpectedly" in scan.failure_reason
    assert not Diagnosis.objects.filter(scan=scan).exists()


def test_without_a_usable_model_the_patient_reads_a_fixed_sentence(scan, settings, tmp_path, caplog):
    settings.MODEL_DIR = tmp_path  # no committed baseline to fall back on, and none registered
    assert analyse_scan.apply(args=[str(scan.id)]).get() == "failed"
    scan.refresh_from_db()
    assert scan.status == ScanStatus.FAILED and scan.failure_code == "no_model"
    assert scan.failure_reason.startswith("No diagnosis model is available")
    assert "baseline" not in scan.failure_reason and "registered" not in scan.failure_reason
    # The registry's own reason is kept for the team, in the log.
    assert "no classifier is registered" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_diagnosis_whose_commit_fails_leaves_no_mask_or_heatmap_behind(world, api):
    from tests.diagnostics.conftest import purge_diagnostics_queue
    from tests.diagnostics.helpers import stored_files

    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 31)).json()["id"])
    purge_diagnostics_queue()  # committed for real, so the upload queued a task that no worker here takes
    services.start_analysis(scan.id)
    png = services.encode_png(np.full((scan.height, scan.width), 255, dtype=np.uint8))
    # A model version that does not exist: PostgreSQL checks the deferred foreign key only at commit.
    result = services.AnalysisResult(label="glioma", probabilities={"glioma": 0.7, "meningioma": 0.1, "notumor": 0.1,
                                                                    "pituitary": 0.1},
                                     model_version_id=2_000_000_000, mask_png=png, heatmap_png=png)
    for _ in range(2):  # the task's retry must not add files either
        with pytest.raises(IntegrityError):
            services.record_diagnosis(scan.id, result)
    assert len(stored_files()) == 1  # the scan's own file only
    scan.refresh_from_db()
    assert scan.status == ScanStatus.PROCESSING and not Diagnosis.objects.filter(scan=scan).exists()


@pytest.mark.parametrize(("selected", "loads_models"), [(None, True), (["federation", "default"], False),
                                                        (["default", "diagnostics"], True)])
def test_a_worker_loads_the_models_unless_its_queues_leave_out_diagnostics(monkeypatch, selected, loads_models):
    # None: started without -Q, the worker consumes every queue, diagnostics among them (a one-host install
    # with a single worker must still analyse scans, with the models loaded ahead).
    from types import SimpleNamespace

    from diagnostics import tasks
    from neurofed.celery import app

    queues = app.amqp.queues
    monkeypatch.setattr(queues, "_consume_from", None)
    monkeypatch.setattr(tasks, "_worker_analyses_scans", None)
    if selected is not None:
        queues.select(selected)
    tasks._note_whether_worker_analyses_scans(sender=SimpleNamespace(app=app, hostname="test@host"))
    assert tasks._worker_analyses_scans is loads_models


def test_a_task_sent_again_by_requeue_scans_after_transient_retries_is_not_taken_for_a_crash_loop(scan):
    """Its task started it three times, asking each time for a retry (the database was down), and was then
    lost: requeue_scans sends a new task, whose retry count starts again at 0. One crash, not three."""
    for retries in range(3):
        assert services.start_analysis(scan.id, retries=retries) is not None
    started = services.start_analysis(scan.id, retries=0)
    assert started is not None and started.status == ScanStatus.PROCESSING and started.crashes == 1


def test_a_failed_scan_queued_again_is_not_stalled_for_having_been_uploaded_long_ago(world, scan):
    from datetime import timedelta

    from django.utils import timezone

    Scan.objects.filter(pk=scan.pk).update(created_at=timezone.now() - timedelta(hours=2))
    services.fail_scan(scan.id, "no_model", "No model.")
    scan.refresh_from_db()
    services.requeue_failed_scan(scan, samples.jpeg_bytes("glioma", 30))  # the same file, uploaded again
    assert not services.stalled_scans(hospital=None, older_than=timedelta(minutes=15)).filter(pk=scan.pk).exists()
    assert services.stalled_scans(hospital=None, older_than=timedelta(0)).filter(pk=scan.pk).exists()
