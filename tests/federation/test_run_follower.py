"""The delivery of federation.tasks.follow_federated_run that follows a run says it is alive on the run's row
(followed_at), so that `requeue_runs` can tell a run nobody watches; and of two deliveries of one run's task,
only one follows it, so a run handed to the queue again is never submitted or stopped twice."""

import datetime

import pytest
from django.utils import timezone

from federation import control, services, tasks
from federation.models import FederatedRun, RunStatus
from federation.tasks import EarlierRunUnfinished, follow_run
from tests.federation.runs import run_over

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_following_delivery_records_that_it_is_alive_but_not_at_every_poll(world, no_superlink, monkeypatch):
    run = run_over(world.a, world.b, status=RunStatus.RUNNING, flower_run_id="123", started_at=timezone.now())
    began = timezone.now()
    assert follow_run(run.pk, poll_s=0.05, home=no_superlink, follower="delivery-1") == RunStatus.FAILED
    run.refresh_from_db()
    assert run.followed_by == "delivery-1"
    # About twenty polls in that second, none of which wrote the row again.
    assert began <= run.followed_at < began + datetime.timedelta(seconds=0.5)

    monkeypatch.setattr(tasks, "HEARTBEAT_S", 0.2)
    again = run_over(world.a, world.b, status=RunStatus.RUNNING, flower_run_id="124", started_at=timezone.now())
    began = timezone.now()
    follow_run(again.pk, poll_s=0.05, home=no_superlink, follower="delivery-2")
    again.refresh_from_db()
    assert again.followed_at >= began + datetime.timedelta(seconds=0.6)  # heard from while it polled


def test_a_run_waiting_its_turn_counts_as_followed(world, no_superlink):
    run_over(world.a, flower_run_id="7", status=RunStatus.RUNNING)
    waiting = run_over(world.a, status=RunStatus.PENDING)
    FederatedRun.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - datetime.timedelta(hours=1))

    with pytest.raises(EarlierRunUnfinished):
        follow_run(waiting.pk, poll_s=0.05, home=no_superlink, follower="waiting")
    waiting.refresh_from_db()
    assert waiting.followed_by == "waiting" and waiting.followed_at > timezone.now() - datetime.timedelta(seconds=5)
    assert waiting not in services.unwatched_runs(older_than=datetime.timedelta(minutes=1))

    # A second delivery of its task (handed to the queue again) leaves the waiting to the first.
    assert follow_run(waiting.pk, poll_s=0.05, home=no_superlink, follower="another") == RunStatus.PENDING


def test_a_run_followed_by_a_live_delivery_is_left_to_it(world, no_superlink):
    run = run_over(world.a, world.b, status=RunStatus.RUNNING, flower_run_id="123", started_at=timezone.now(),
                   followed_by="the-first", followed_at=timezone.now())
    # Without the SuperLink a follower would fail the run within a second: this one does not follow it.
    assert follow_run(run.pk, poll_s=0.05, home=no_superlink, follower="handed-again") == RunStatus.RUNNING
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.followed_by == "the-first"

    # Redelivered by the broker (the same task id), the first delivery takes the run up again at once.
    assert follow_run(run.pk, poll_s=0.05, home=no_superlink, follower="the-first") == RunStatus.FAILED


def test_a_silent_follower_is_taken_over_and_then_stops_following(world, no_superlink):
    silent_since = timezone.now() - services.follower_quiet_limit(RunStatus.RUNNING) - datetime.timedelta(seconds=5)
    run = run_over(world.a, world.b, status=RunStatus.RUNNING, flower_run_id="123", started_at=timezone.now(),
                   followed_by="killed", followed_at=silent_since)
    assert follow_run(run.pk, poll_s=0.05, home=no_superlink, follower="handed-again") == RunStatus.FAILED
    run.refresh_from_db()
    assert run.followed_by == "handed-again" and run.failure_reason.startswith("The SuperLink was unreachable")
    # The first, had it only stalled, learns at its next heartbeat that it no longer follows the run.
    assert not services.record_following(run.pk, "killed")


def test_a_run_not_yet_submitted_is_not_taken_from_a_follower_that_may_be_submitting_it(world, no_superlink):
    # `flwr run` may keep the first follower silent for minutes; a second submission would start a second
    # ServerApp training the same run.
    run = run_over(world.a, world.b, status=RunStatus.PENDING, followed_by="submitting",
                   followed_at=timezone.now() - datetime.timedelta(minutes=6))
    assert follow_run(run.pk, poll_s=0.05, home=no_superlink, follower="handed-again") == RunStatus.PENDING
    run.refresh_from_db()
    assert run.followed_by == "submitting" and run.failure_reason == ""


def test_a_follower_taken_over_while_it_asked_the_superlink_does_not_submit_the_run(world, no_superlink, monkeypatch):
    # The first follower stalled in its question to the SuperLink past the quiet limit; another delivery took
    # the run over meanwhile. Submitting it now would start a second ServerApp training the same run.
    run = run_over(world.a, world.b, status=RunStatus.PENDING)

    def answer_after_a_takeover(home, run_id, *, since, must_answer):
        FederatedRun.objects.filter(pk=run_id).update(followed_by="handed-again", followed_at=timezone.now())
        return ""

    submitted = []
    monkeypatch.setattr(control, "find_submitted", answer_after_a_takeover)
    monkeypatch.setattr(control, "submit_run", lambda home, run_id: submitted.append(run_id) or "99")
    status = follow_run(run.pk, poll_s=0.05, home=no_superlink, follower="stalled")
    assert submitted == []
    run.refresh_from_db()
    assert status == RunStatus.PENDING and run.flower_run_id == "" and run.followed_by == "handed-again"


def test_a_follower_that_finds_its_run_stopped_stops_the_flower_run_still_going(world, monkeypatch, tmp_path):
    """The operator's stop did not reach the SuperLink (unreachable for a moment): the follower stops it."""
    stopped = []
    monkeypatch.setattr(control, "run_state", lambda home, rid: control.FlowerRunState("running", "", ""))
    monkeypatch.setattr(control, "stop_run", lambda home, flower_run_id: stopped.append(flower_run_id))
    run = run_over(world.a, world.b, status=RunStatus.STOPPED, flower_run_id="4242",
                   failure_reason="Stopped by the platform operator.")
    assert follow_run(run.pk, poll_s=0.01, home=tmp_path) == RunStatus.STOPPED
    assert stopped == ["4242"]

    # Stopped while this delivery followed it: the same.
    going = run_over(world.a, world.b, status=RunStatus.RUNNING, flower_run_id="4343", started_at=timezone.now())

    def stop_meanwhile(home, rid):
        services.fail_run(going.pk, "Stopped by the platform operator.", status=RunStatus.STOPPED)
        return control.FlowerRunState("running", "", "")

    monkeypatch.setattr(control, "run_state", stop_meanwhile)
    assert follow_run(going.pk, poll_s=0.01, home=tmp_path) == RunStatus.STOPPED
    assert stopped == ["4242", "4343"]


def test_a_stopped_run_whose_flower_run_has_ended_is_left_alone(world, monkeypatch, tmp_path):
    stopped = []
    monkeypatch.setattr(control, "run_state", lambda home, rid: control.FlowerRunState("finished", "stopped", ""))
    monkeypatch.setattr(control, "stop_run", lambda home, flower_run_id: stopped.append(flower_run_id))
    run = run_over(world.a, world.b, status=RunStatus.STOPPED, flower_run_id="4242")
    assert follow_run(run.pk, poll_s=0.01, home=tmp_path) == RunStatus.STOPPED
    assert stopped == []


def test_a_stopped_run_the_superlink_no_longer_holds_is_left_at_once(world, monkeypatch, tmp_path, settings):
    """The SuperLink answered: it is not unreachable, and there is nothing to wait for."""
    settings.FEDERATION_SUPERLINK_LOST_S = 60
    asked = []

    def unknown(home, rid):
        asked.append(rid)
        raise control.ControlError(f"the SuperLink does not know run {rid}")

    monkeypatch.setattr(control, "run_state", unknown)
    monkeypatch.setattr(control, "stop_run", lambda home, rid: pytest.fail("nothing to stop"))
    run = run_over(world.a, world.b, status=RunStatus.STOPPED, flower_run_id="4242")
    assert follow_run(run.pk, poll_s=0.01, home=tmp_path) == RunStatus.STOPPED
    assert asked == ["4242"]  # asked once, not again and again for a minute


def test_a_follower_gives_up_asking_about_a_stopped_run_when_the_superlink_stays_away(world, no_superlink):
    run = run_over(world.a, world.b, status=RunStatus.STOPPED, flower_run_id="4242")
    assert follow_run(run.pk, poll_s=0.05, home=no_superlink) == RunStatus.STOPPED
