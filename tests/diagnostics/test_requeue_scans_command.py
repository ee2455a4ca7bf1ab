"""`manage.py requeue_scans` (diagnostics/management/commands/requeue_scans.py) against the real broker.

The uploads here never commit, so their tasks are never sent: each scan stays queued with its file,
as after a broker outage. The command must put exactly the stalled ones back on the diagnostics queue.
"""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from diagnostics import services
from diagnostics.models.scans import Diagnosis, Scan, ScanStatus
from tests.broker_queue import sent_task_arguments
from tests.diagnostics import samples
from tests.diagnostics.helpers import finish, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def diagnostics_queue():
    """The scan ids of the analysis tasks sent to the diagnostics queue during the test."""
    with sent_task_arguments("diagnostics", "diagnostics.tasks.analyse_scan") as arguments:
        yield arguments


def stalled(scan_id, minutes):
    Scan.objects.filter(pk=scan_id).update(created_at=timezone.now() - timedelta(minutes=minutes))


def test_requeues_only_scans_queued_past_the_threshold_at_the_chosen_hospital(world, api, diagnostics_queue, capsys):
    old_a = upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 41)).json()["id"]
    fresh_a = upload(api(world.patient_a2), world.a, samples.jpeg_bytes("glioma", 42)).json()["id"]
    old_b = upload(api(world.patient_b), world.b, samples.jpeg_bytes("glioma", 43)).json()["id"]
    finished_a = upload(api(world.owner), world.a, samples.jpeg_bytes("meningioma", 44)).json()["id"]
    stalled(old_a, 30), stalled(old_b, 30), stalled(finished_a, 30)
    Scan.objects.filter(pk=finished_a).update(status=ScanStatus.DONE)

    call_command("requeue_scans", "--hospital", "st-anne", "--dry-run")
    assert "1 scan(s) at st-anne queued or processing for over 15 min (dry run" in capsys.readouterr().out
    assert diagnostics_queue() == []

    call_command("requeue_scans", "--hospital", "st-anne")
    assert "1 scan(s) at st-anne scheduled again." in capsys.readouterr().out
    assert diagnostics_queue() == [old_a]

    call_command("requeue_scans", "--older-than-min", "5")
    assert diagnostics_queue() == sorted([old_a, old_a, old_b])
    assert fresh_a not in diagnostics_queue() and Scan.objects.get(pk=fresh_a).status == ScanStatus.QUEUED


def test_a_scan_left_processing_by_a_task_that_ended_is_scheduled_again_and_finished_once(world, api,
                                                                                          diagnostics_queue):
    """A task whose retries ran out while the database was down leaves its scan processing, and the
    broker holds no message for it any more: only the command can get it analysed."""
    left = upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 45)).json()["id"]
    running = upload(api(world.patient_a2), world.a, samples.jpeg_bytes("glioma", 46)).json()["id"]
    services.start_analysis(left)
    services.start_analysis(running)
    Scan.objects.filter(pk__in=[left, running]).update(created_at=timezone.now() - timedelta(minutes=30))
    Scan.objects.filter(pk=left).update(started_at=timezone.now() - timedelta(minutes=20))

    call_command("requeue_scans")
    assert diagnostics_queue() == [left]  # the one started a moment ago is merely running

    # The redelivered task finishes it, and one still running beside it records nothing more.
    finish(Scan.objects.get(pk=left))
    assert Scan.objects.get(pk=left).status == ScanStatus.DONE
    assert services.start_analysis(left) is None and Diagnosis.objects.filter(scan_id=left).count() == 1


def test_refuses_an_unknown_hospital_and_a_threshold_below_a_minute(world):
    with pytest.raises(CommandError, match="No hospital with the slug 'nowhere'"):
        call_command("requeue_scans", "--hospital", "nowhere")
    with pytest.raises(CommandError, match="at least 1"):
        call_command("requeue_scans", "--older-than-min", "0")


def test_from_cron_at_verbosity_0_it_prints_nothing_unless_it_scheduled_scans(world, api, diagnostics_queue):
    """cron mails whatever a job prints: a run with nothing to do must print nothing, progress bar included."""
    out, err = io.StringIO(), io.StringIO()
    call_command("requeue_scans", verbosity=0, stdout=out, stderr=err)
    assert (out.getvalue(), err.getvalue()) == ("", "")

    left = upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 47)).json()["id"]
    stalled(left, 30)
    call_command("requeue_scans", verbosity=0, stdout=out, stderr=err)
    assert (out.getvalue(), err.getvalue()) == ("1 scan(s) at every hospital scheduled again.\n", "")
    assert diagnostics_queue() == [left]

    # At the default verbosity, for a person at a terminal: the progress bar too.
    call_command("requeue_scans", stdout=out, stderr=err)
    assert "Scheduling" in err.getvalue()
