"""Runs over a hospital start one after another, in the order they were asked for: a node trains one run at
a time, and an operator's start is not refused for a busy hospital. The order must not depend on the
federation worker having a single process."""

import pytest
from celery.exceptions import Retry

from federation.models import RunStatus
from federation.tasks import EarlierRunUnfinished, follow_federated_run, follow_run
from tests.federation.runs import run_over

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("earlier_status", [RunStatus.PENDING, RunStatus.SUBMITTED, RunStatus.RUNNING])
def test_a_run_waits_while_an_earlier_one_over_a_shared_hospital_is_unfinished(world, no_superlink, earlier_status):
    run_over(world.a, status=earlier_status, flower_run_id="" if earlier_status == RunStatus.PENDING else "7")
    later = run_over(world.a, world.b, status=RunStatus.PENDING)

    with pytest.raises(EarlierRunUnfinished):
        follow_run(later.pk, poll_s=0.05, home=no_superlink)

    later.refresh_from_db()
    assert later.status == RunStatus.PENDING and later.flower_run_id == ""  # nothing asked of the SuperLink


def test_the_task_goes_back_to_the_queue_instead_of_holding_its_worker(world, no_superlink):
    run_over(world.a, status=RunStatus.RUNNING, flower_run_id="7")
    later = run_over(world.a, status=RunStatus.PENDING)
    with pytest.raises(Retry):
        follow_federated_run(later.pk)


@pytest.mark.parametrize("earlier_status", [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.STOPPED])
def test_a_finished_earlier_run_does_not_hold_the_next(world, no_superlink, earlier_status):
    run_over(world.a, status=earlier_status, flower_run_id="7")
    later = run_over(world.a, status=RunStatus.PENDING)

    assert follow_run(later.pk, poll_s=0.05, home=no_superlink) == RunStatus.FAILED
    later.refresh_from_db()
    assert later.failure_reason.startswith("The SuperLink was unreachable")  # it went on to submit


def test_runs_over_other_hospitals_and_later_runs_do_not_hold_a_run(world, no_superlink):
    run_over(world.b, status=RunStatus.RUNNING, flower_run_id="7")
    run = run_over(world.a, status=RunStatus.PENDING)
    run_over(world.a, status=RunStatus.PENDING)  # asked for after it

    assert follow_run(run.pk, poll_s=0.05, home=no_superlink) == RunStatus.FAILED
    run.refresh_from_db()
    assert run.failure_reason.startswith("The SuperLink was unreachable")


def test_a_run_already_submitted_is_followed_whatever_came_before(world, no_superlink):
    # Redelivered after its worker died: it holds its nodes already, so waiting would only starve it.
    run_over(world.a, status=RunStatus.RUNNING, flower_run_id="7")
    later = run_over(world.a, status=RunStatus.SUBMITTED, flower_run_id="8")

    assert follow_run(later.pk, poll_s=0.05, home=no_superlink) == RunStatus.FAILED
    later.refresh_from_db()
    assert later.failure_reason.startswith("The SuperLink was unreachable")


def test_a_run_stopped_while_it_waited_its_turn_leaves_the_queue(world, no_superlink):
    # Never submitted (an earlier run over its hospital is unfinished, so it never had its turn): nothing
    # is left to find or stop on the SuperLink, and its task must not go on coming back every TURN_POLL_S
    # until the earlier run ends, hours later.
    run_over(world.a, status=RunStatus.RUNNING, flower_run_id="7")
    stopped = run_over(world.a, status=RunStatus.STOPPED)

    assert follow_run(stopped.pk, poll_s=0.05, home=no_superlink) == RunStatus.STOPPED
    follow_federated_run(stopped.pk)  # no Retry
