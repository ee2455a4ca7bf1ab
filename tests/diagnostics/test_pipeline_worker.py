"""End to end with real processes: uploads over HTTP to daphne, a Celery worker on Redis (not eager),
state changes over real websockets, and a worker killed with SIGKILL in the middle of a scan."""

import json
import time
import urllib.error
import urllib.request

import pytest
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from diagnostics.models.scans import Diagnosis, Scan
from hospitals.api_tokens import issue_token
from hospitals.models import ApiToken
from tests.diagnostics import samples
from tests.diagnostics.helpers import multipart, patient_of
from tests.diagnostics.conftest import VISIBILITY_TIMEOUT_S

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def http(server, method, path, user, body=None, content_type=None):
    request = urllib.request.Request(server.url + path, data=body, method=method)
    request.add_header("Authorization", f"Token {issue_token(user)[1]}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def upload_over_http(server, hospital, user, data, name="scan.bin", **fields):
    body, content_type = multipart(fields, {"file": (name, data)})
    return http(server, "POST", f"/api/v1/hospitals/{hospital.slug}/scans/", user, body, content_type)


def websocket(server, path, user):
    client = Client()
    client.force_login(user)
    return connect(
        server.ws_url + path,
        additional_headers={"Cookie": f"sessionid={client.cookies['sessionid'].value}", "Origin": server.url},
        open_timeout=20,
    )


def events_until(socket, scan_id, final=("done", "failed"), timeout=240):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
        except TimeoutError:
            break
        if message.get("scan") == scan_id:
            seen.append(message)
            if message["status"] in final and message["event"] != "scan.created":
                return seen
    raise AssertionError(f"no final state for {scan_id} within {timeout}s; saw {seen}")


SLOW_VOLUME_SLICES = 120


@pytest.fixture
def live(world, active_model, shared_media_root, celery_worker_process, asgi_server):
    return asgi_server


@pytest.mark.parametrize("fmt", sorted(samples.GOOD_FORMATS))
def test_upload_to_result_with_live_state_changes(world, live, celery_worker_process, fmt):
    factory, _, kind = samples.GOOD_FORMATS[fmt]
    with websocket(live, f"/ws/hospitals/{world.a.slug}/worklist/", world.doctor_a) as worklist:
        status, body = upload_over_http(live, world.a, world.owner, factory())
        assert status == 201, body
        scan_id = body["id"]
        with websocket(live, f"/ws/hospitals/{world.a.slug}/scans/{scan_id}/", world.owner) as own:
            first = json.loads(own.recv(timeout=20))  # the state at connection time
            assert first["scan"] == scan_id and first["status"] in ("queued", "processing", "done")
            seen = events_until(worklist, scan_id)
            if first["status"] != "done":
                assert events_until(own, scan_id)[-1]["status"] == "done"
    states = [m["status"] for m in seen]
    assert states == ["queued", "processing", "done"], (states, celery_worker_process.log())
    assert "label" not in seen[-1]  # pushes carry states, never results
    status, detail = http(live, "GET", f"/api/v1/hospitals/{world.a.slug}/scans/{scan_id}/", world.doctor_a)
    assert status == 200 and detail["status"] == "done" and detail["kind"] == kind
    result = detail["result"]
    assert result["label"] in ("glioma", "meningioma", "notumor", "pituitary")
    assert abs(sum(result["probabilities"].values()) - 1) < 1e-3
    assert result["model_version"] is not None
    assert result["timings_ms"]["model_ms"] > 0
    assert result["slices_analysed"] == detail["slice_count"]
    assert Diagnosis.objects.filter(scan_id=scan_id).count() == 1
    # Started without -l, as in production: the log holds Celery's INFO lines and the app's.
    log = log_once_it_holds(celery_worker_process, f"scan {scan_id}: done")
    assert " ready." in log
    started = [line for line in log.splitlines() if f"scan {scan_id}: analysis started" in line]
    assert len(started) == 1 and " diagnostics.tasks.analyse_scan[" in started[0], log  # which task logged it
    assert f"Task diagnostics.tasks.analyse_scan[" in log and " received" in log


def log_once_it_holds(worker, text, timeout: float = 20) -> str:
    """The worker's log once `text` is in it: a line logged after the state change it follows."""
    deadline = time.monotonic() + timeout
    while text not in (log := worker.log_path.read_text(errors="replace")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert text in log, worker.log()
    return log


def test_worker_killed_mid_scan_finishes_it_once_after_restart(world, live, celery_worker_process):
    # Enough slices that the analysis is still running when the worker is killed: the compiled models
    # take a few milliseconds a slice, so the kill follows the first sight of "processing" at once.
    status, body = upload_over_http(live, world.a, world.owner, samples.nifti_bytes("glioma", SLOW_VOLUME_SLICES))
    assert status == 201, body
    scan = Scan.objects.get(pk=body["id"])
    deadline = time.monotonic() + 120
    while scan.status != "processing" and time.monotonic() < deadline:
        time.sleep(0.05)
        scan.refresh_from_db()
    assert scan.status == "processing", celery_worker_process.log()
    celery_worker_process.kill()
    scan.refresh_from_db()
    assert scan.status == "processing" and not Diagnosis.objects.filter(scan=scan).exists()
    # The worker comes back once the broker would redeliver the task. Redis redelivers from a sweep that a
    # worker runs as it starts and then only about every 100 s (kombu's restore_visible), so a worker back
    # sooner than that would sit idle for a minute and a half before it sees the task again.
    time.sleep(VISIBILITY_TIMEOUT_S + 1)
    celery_worker_process.start()
    deadline = time.monotonic() + 240
    while scan.status not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
        scan.refresh_from_db()
    assert scan.status == "done", (scan.failure_code, celery_worker_process.log())
    assert scan.attempts >= 2
    assert Diagnosis.objects.filter(scan=scan).count() == 1
    assert Diagnosis.objects.get(scan=scan).slices_analysed == SLOW_VOLUME_SLICES


def test_websockets_of_another_hospital_are_closed_as_not_found(world, live):
    scan = Scan.objects.get(pk=upload_over_http(live, world.a, world.owner, samples.jpeg_bytes("glioma", 20))[1]["id"])
    paths = [f"/ws/hospitals/{world.a.slug}/scans/{scan.id}/", f"/ws/hospitals/{world.a.slug}/worklist/",
             f"/ws/hospitals/{world.b.slug}/scans/{scan.id}/", f"/ws/hospitals/{world.a.slug}/scans/nonsense/"]
    for path in paths:
        with websocket(live, path, world.outsider) as socket, pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)
        assert closed.value.rcvd.code == 4404, path
    # A patient of the hospital: someone else's scan is "not found", the doctors' worklist "forbidden".
    with websocket(live, f"/ws/hospitals/{world.a.slug}/scans/{scan.id}/", world.patient_a2) as socket, \
            pytest.raises(ConnectionClosed) as closed:
        socket.recv(timeout=10)
    assert closed.value.rcvd.code == 4404
    with websocket(live, f"/ws/hospitals/{world.a.slug}/worklist/", world.owner) as socket, \
            pytest.raises(ConnectionClosed) as closed:
        socket.recv(timeout=10)
    assert closed.value.rcvd.code == 4403
    assert patient_of(world.owner, world.a) == scan.patient


def test_bad_upload_over_http_leaves_nothing(world, live, live_media_root):
    before = sorted(live_media_root.rglob("*.bin"))
    status, body = upload_over_http(live, world.a, world.owner, samples.dicom_bytes(modality="CT"), name="ct.dcm")
    assert status == 422 and body["error"] == "not_mr"
    status, body = upload_over_http(live, world.a, world.owner, samples.jpeg_bytes(), name="../../x.jpg")
    assert status == 400 and body["error"] == "invalid_filename"
    assert not Scan.objects.exists() and sorted(live_media_root.rglob("*.bin")) == before


def test_benchmark_pipeline_reports_latency_throughput_and_memory(world, live, celery_worker_process):
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("benchmark_pipeline", url=live.url, hospital=world.a.slug, doctor=world.doctor_a.email, count=4,
                 concurrency=2, server_pid=live.pid, worker_pid=celery_worker_process.process.pid, json=True,
                 timeout=240, stdout=out)
    figures = json.loads(out.getvalue())
    assert figures["uploads"] == 4 and figures["statuses"] == {"done": 4}
    assert 0 < figures["model_only_p50_s"] <= figures["end_to_end_p50_s"] <= figures["end_to_end_p95_s"]
    assert figures["scans_per_minute"] > 0
    memory = figures["peak_rss_mb"]
    assert 0 < memory["web"] < 400, memory  # the web process never loads TensorFlow
    assert any(name.startswith("worker (pool") for name in memory)
    # The token it made to upload with goes with the run; the doctor had none.
    assert not ApiToken.objects.filter(user=world.doctor_a).exists()
