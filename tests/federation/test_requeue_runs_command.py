"""`manage.py requeue_runs` (federation/management/commands/requeue_runs.py) against the real broker.

A run whose follower was killed stays "running" with nobody enforcing its deadline until the broker
redelivers the task an hour later; the command must put exactly those runs back on the federation queue.
"""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from federation.models import FederatedRun, RunStatus
from tests.broker_queue import sent_task_arguments
from tests.federation.runs import run_over

pytestmark = pytest.mark.django_db


@pytest.fixture
def federation_queue():
    """The run ids of the follow tasks sent to the federation queue during the test."""
    with sent_task_arguments("federation", "federation.tasks.follow_federated_run") as arguments:
        yield lambda: sorted(int(run_id) for run_id in arguments())


def heard_from(*hospitals, status, heard_min_ago=None, created_min_ago=0, **fields) -> FederatedRun:
    """A run whose follower was last heard from `heard_min_ago` minutes ago (never, when None)."""
    now = timezone.now()
    followed_at = None if heard_min_ago is None else now - timedelta(minutes=heard_min_ago)
    run = run_over(*hospitals, status=status, followed_by="a-delivery" if followed_at else "",
                   followed_at=followed_at, **fields)
    FederatedRun.objects.filter(pk=run.pk).update(created_at=now - timedelta(minutes=created_min_ago))
    return run


def test_hands_again_only_the_runs_whose_follower_fell_silent(world, federation_queue, capsys):
    lost = heard_from(world.a, world.b, status=RunStatus.RUNNING, flower_run_id="11", heard_min_ago=8,
                    created_min_ago=60)
    lost_submitted = heard_from(world.a, status=RunStatus.SUBMITTED, flower_run_id="12", heard_min_ago=30,
                              created_min_ago=60)
    never_taken_up = heard_from(world.b, status=RunStatus.PENDING, created_min_ago=20)
    watched = heard_from(world.a, world.b, status=RunStatus.RUNNING, flower_run_id="13", heard_min_ago=0,
                       created_min_ago=60)
    just_asked_for = heard_from(world.a, status=RunStatus.PENDING, created_min_ago=1)
    # Its follower may be inside `flwr run` for minutes: not dead yet at 8 minutes.
    submitting = heard_from(world.b, status=RunStatus.PENDING, heard_min_ago=8, created_min_ago=60)
    for status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.STOPPED):
        heard_from(world.a, world.b, status=status, flower_run_id="14", heard_min_ago=60, created_min_ago=120)
    stale = sorted([lost.pk, lost_submitted.pk, never_taken_up.pk])

    call_command("requeue_runs", "--dry-run")
    out = capsys.readouterr().out
    assert (f"3 unfinished run(s) whose follower was silent for over 5 min: {', '.join(map(str, stale))} "
            "(dry run: nothing queued)." in out)
    assert federation_queue() == []

    call_command("requeue_runs")
    assert "3 run(s) handed to the federation queue again." in capsys.readouterr().out
    assert federation_queue() == stale
    assert not {watched.pk, just_asked_for.pk, submitting.pk} & set(federation_queue())
    # Handed again, not touched: the follower that takes each up decides what happens to it.
    assert FederatedRun.objects.get(pk=lost.pk).status == RunStatus.RUNNING

    call_command("requeue_runs", "--older-than-min", "10")
    assert "3 run(s) handed" not in capsys.readouterr().out
    assert federation_queue() == sorted([*stale, lost_submitted.pk, never_taken_up.pk])


def test_nothing_to_do_says_so(world, federation_queue, capsys):
    heard_from(world.a, world.b, status=RunStatus.RUNNING, flower_run_id="11", heard_min_ago=0, created_min_ago=60)
    call_command("requeue_runs")
    assert "0 unfinished run(s) whose follower was silent for over 5 min; nothing to do." in capsys.readouterr().out
    assert federation_queue() == []


@pytest.mark.usefixtures("broker_down")
def test_a_queue_that_refuses_the_runs_is_an_error_and_fails_no_run(world):
    lost = heard_from(world.a, world.b, status=RunStatus.RUNNING, flower_run_id="11", heard_min_ago=8,
                    created_min_ago=60)
    with pytest.raises(CommandError, match="0 run.s. handed to the federation queue; the task queue refused 1"):
        call_command("requeue_runs")
    # Its ServerApp may be training still: the next try may find the queue back.
    lost.refresh_from_db()
    assert lost.status == RunStatus.RUNNING and lost.failure_reason == ""


def test_refuses_a_threshold_below_a_minute(world):
    with pytest.raises(CommandError, match="at least 1"):
        call_command("requeue_runs", "--older-than-min", "0")


def test_from_cron_at_verbosity_0_it_prints_nothing_unless_it_queued_runs(world, federation_queue):
    """cron mails whatever a job prints: a run with nothing to do must print nothing, progress bar included."""
    heard_from(world.a, world.b, status=RunStatus.RUNNING, flower_run_id="11", heard_min_ago=0, created_min_ago=60)
    out, err = io.StringIO(), io.StringIO()
    call_command("requeue_runs", verbosity=0, stdout=out, stderr=err)
    assert (out.getvalue(), err.getvalue()) == ("", "")

    lost = heard_from(world.a, world.b, status=RunStatus.RUNNING, flower_run_id="12", heard_min_ago=8,
                      created_min_ago=60)
    call_command("requeue_runs", verbosity=0, stdout=out, stderr=err)
    assert (out.getvalue(), err.getvalue()) == ("1 run(s) handed to the federation queue again.\n", "")
    assert federation_queue() == [lost.pk]

    # At the default verbosity, for a person at a terminal: the progress bar too.
    call_command("requeue_runs", stdout=out, stderr=err)
    assert "Queueing" in err.getvalue()


@pytest.mark.usefixtures("broker_down")
def test_a_refusing_queue_is_an_error_at_verbosity_0_too(world):
    heard_from(world.a, world.b, status=RunStatus.RUNNING, flower_run_id="11", heard_min_ago=8, created_min_ago=60)
    with pytest.raises(CommandError, match="the task queue refused 1"):
        call_command("requeue_runs", verbosity=0, stdout=io.StringIO(), stderr=io.StringIO())
