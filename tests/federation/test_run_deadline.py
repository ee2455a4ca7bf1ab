"""The run deadline (FEDERATION_RUN_DEADLINE_S) counts from the run's start, not from the delivery of the
task that follows it: a task redelivered after its worker died must not give the run a fresh deadline."""

import datetime

import pytest
from django.utils import timezone

from federation.models import FederatedRun, RunStatus
from federation.tasks import follow_run

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_run_redelivered_past_its_deadline_is_stopped_and_failed_at_once(world, settings, tmp_path):
    settings.FEDERATION_RUN_DEADLINE_S = 3600
    settings.FEDERATION_SUPERLINK_LOST_S = 1
    # Started two hours ago by a delivery whose worker died; this home has no SuperLink to answer.
    run = FederatedRun.objects.create(status=RunStatus.RUNNING, flower_run_id="123",
                                      started_at=timezone.now() - datetime.timedelta(hours=2))
    run.hospitals.set([world.a, world.b])
    assert follow_run(run.pk, poll_s=0.05, home=tmp_path) == RunStatus.FAILED
    run.refresh_from_db()
    assert run.failure_reason == "The run passed its deadline of 3600 s and was stopped."


def test_a_run_within_its_deadline_is_not_failed_for_it(world, settings, tmp_path):
    settings.FEDERATION_RUN_DEADLINE_S = 3600
    settings.FEDERATION_SUPERLINK_LOST_S = 1
    run = FederatedRun.objects.create(status=RunStatus.RUNNING, flower_run_id="123",
                                      started_at=timezone.now() - datetime.timedelta(minutes=30))
    run.hospitals.set([world.a, world.b])
    assert follow_run(run.pk, poll_s=0.05, home=tmp_path) == RunStatus.FAILED
    run.refresh_from_db()
    assert run.failure_reason.startswith("The SuperLink was unreachable for 1 s")
