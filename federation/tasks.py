"""Celery task (queue `federation`) that submits a federated run and follows it to its end.

The ServerApp records rounds itself; this task owns the deadlines Flower lacks: a run past its
deadline, or whose SuperLink stays unreachable, is stopped and failed with a reason, so a run never
hangs in "running".
"""

import datetime
import logging
import time
import uuid

from celery import shared_task
from django.utils import timezone

log = logging.getLogger(__name__)
# httpx logs every status poll of the Control API at INFO.
logging.getLogger("httpx").setLevel(logging.WARNING)

POLL_S = 2.0
# How often a run waiting for an earlier one over the same hospitals asks again. Not a wait inside the
# task: that would hold a federation worker process doing nothing.
TURN_POLL_S = 15
# How often a follower records that it is alive (FederatedRun.followed_at): often enough that `requeue_runs`
# tells a dead one from a live one within minutes, seldom enough not to write the run's row at every poll.
HEARTBEAT_S = 30


class EarlierRunUnfinished(Exception):
    """An earlier run over one of this run's hospitals has not finished: a node trains one run at a time."""


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def follow_federated_run(self, run_id: int) -> None:
    try:
        # The task id stays the same through retries and redeliveries of this message, and differs for a
        # message requeue_runs sent: the delivery that has the run takes it up again at once, another leaves it.
        follow_run(run_id, follower=self.request.id)
    except EarlierRunUnfinished:
        # Back in the queue until it is this run's turn; every earlier run ends, by its deadline at the latest.
        raise self.retry(countdown=TURN_POLL_S, max_retries=None)


def follow_run(run_id: int, *, poll_s: float = POLL_S, home=None, follower: str = "") -> str:
    """Submit (unless already submitted) and poll until the run ends; returns the final status.

    `home` is the federation's folder (its SuperLink connection); the platform's by default. `follower`
    names this delivery (services.take_up_following); a new name by default.
    """
    from federation import conf, control, services
    from federation.models import FederatedRun, RunStatus

    follower = follower or uuid.uuid4().hex
    run = FederatedRun.objects.get(pk=run_id)
    home = home or conf.federation_home()
    if run.finished and run.flower_run_id:
        _stop_flower_run_of_stopped(home, run, poll_s)
        return run.status
    if not run.flower_run_id and services.earlier_unfinished_run(run) is not None:
        if run.finished:
            # Stopped while it waited its turn: never submitted (a run is submitted only once no earlier one is
            # unfinished, and none can become so again), so there is nothing to find or stop on the SuperLink.
            return run.status
        # Each check counts as hearing from the follower: a run waiting its turn is followed, not lost.
        if not services.take_up_following(run_id, follower):
            return run.status  # another delivery waits for its turn: one is enough
        # Runs over a hospital start in the order they were asked for, whatever the number of federation
        # worker processes: an operator's start is not refused for a busy hospital, it queues.
        raise EarlierRunUnfinished(run_id)
    if not services.take_up_following(run_id, follower):
        # Another delivery follows the run and was heard from lately (this one was queued by requeue_runs
        # while the other was held up, or redelivered by the broker after requeue_runs had one take over).
        log.info("federated run %s is followed by another delivery; this one leaves it", run_id)
        run.refresh_from_db()
        return run.status
    heard = time.monotonic()

    def still_following() -> bool:
        """Record, at most every HEARTBEAT_S, that this follower is alive; False once another has taken over."""
        nonlocal heard
        if time.monotonic() - heard < HEARTBEAT_S:
            return True
        heard = time.monotonic()
        return services.record_following(run_id, follower)

    if run.flower_run_id:
        # Redelivered after a worker died: the run was submitted already, so only follow it.
        flower_run_id = run.flower_run_id
    else:
        # A delivery of this task that died after the SuperLink took the run, and before the run recorded
        # it, must not have the run started a second time: two ServerApps would train it side by side.
        # A SuperLink that does not answer (the coordinator restarting) may hold the run all the same: wait
        # for its answer, as a run being followed would, rather than submit the run a second time.
        unreachable_since = time.monotonic()
        while True:
            try:
                flower_run_id = control.find_submitted(home, run.pk, since=run.created_at, must_answer=True)
                break
            except Exception as exc:  # noqa: BLE001 - connection refused, reset, timeouts...
                if time.monotonic() - unreachable_since > conf.superlink_lost_s():
                    services.fail_run(run_id, f"The SuperLink was unreachable for {conf.superlink_lost_s()} s "
                                              f"({type(exc).__name__}); the run was abandoned.")
                    run.refresh_from_db()
                    return run.status
                if not still_following():
                    return _left_to_another(run)
                time.sleep(poll_s)
        if not flower_run_id and run.finished:
            return run.status
        if not flower_run_id:
            # Asked at once, not at the heartbeat's pace: had the SuperLink's answer kept this delivery silent
            # long enough for another to take the run over, both would submit it.
            if not services.record_following(run_id, follower):
                return _left_to_another(run)
            try:
                flower_run_id = control.submit_run(home, run.pk, since=run.created_at)
            except Exception as exc:  # noqa: BLE001 - any failure to submit ends the run with its reason
                services.fail_run(run_id, f"Could not submit the run to the SuperLink: {exc}")
                return RunStatus.FAILED
        services.mark_submitted(run_id, flower_run_id)
        run.refresh_from_db()
        if run.finished and not run.flower_run_id:
            # Stopped while it was being submitted: the stop found no Flower run to end, and the nodes
            # would train it to the end for nobody. End it here.
            services.stop_flower_run(flower_run_id, home)
            return run.status
    # From the run's start (its ServerApp's), not this delivery's: a delivery after a worker died must not
    # give the run a fresh deadline. Until the ServerApp has started, from when this delivery began following.
    following_since = timezone.now()
    deadline = datetime.timedelta(seconds=conf.run_deadline_s())
    unreachable_since = None
    while True:
        run.refresh_from_db()
        if run.finished:
            _stop_flower_run_of_stopped(home, run, poll_s)
            return run.status
        if not still_following():
            return _left_to_another(run)
        if timezone.now() > (run.started_at or following_since) + deadline:
            services.stop_flower_run(flower_run_id, home)
            services.fail_run(run_id, f"The run passed its deadline of {conf.run_deadline_s()} s and was stopped.")
            run.refresh_from_db()
            return run.status
        try:
            state = control.run_state(home, flower_run_id)
            unreachable_since = None
        except Exception as exc:  # noqa: BLE001 - connection refused, reset, timeouts...
            now = time.monotonic()
            unreachable_since = unreachable_since or now
            if now - unreachable_since > conf.superlink_lost_s():
                services.fail_run(run_id, f"The SuperLink was unreachable for {conf.superlink_lost_s()} s "
                                          f"({type(exc).__name__}); the run was abandoned.")
                return RunStatus.FAILED
            time.sleep(poll_s)
            continue
        if state.finished:
            run.refresh_from_db()
            if run.finished:  # the ServerApp recorded the outcome itself
                return run.status
            if state.sub_status == "completed":
                services.fail_run(run_id, "Flower reports the run completed but the ServerApp recorded no model.")
            elif state.sub_status == "stopped":
                services.fail_run(run_id, "The run was stopped on the SuperLink.", status=RunStatus.STOPPED)
            else:
                services.fail_run(run_id, f"The ServerApp failed: {state.details or 'no details from Flower'}")
            run.refresh_from_db()
            return run.status
        time.sleep(poll_s)


def _left_to_another(run) -> str:
    # Silent for longer than a live follower may be (a stalled call), and another delivery has taken over:
    # the run has one follower, which enforces its deadline.
    log.warning("federated run %s was taken over by another delivery; this one stops following it", run.pk)
    run.refresh_from_db()
    return run.status


def _stop_flower_run_of_stopped(home, run, poll_s: float) -> None:
    """A run recorded stopped whose Flower run goes on is stopped on the SuperLink: the operator's stop
    reached the SuperLink not at all (unreachable for a moment) or before the run was submitted. Left
    going, its ServerApp would train on the hospitals' nodes to the end, beside the next run over them,
    which no longer waits for it. Asked until the SuperLink answers, for as long as a run is followed."""
    from federation import conf, control, services
    from federation.models import RunStatus

    if run.status != RunStatus.STOPPED or not run.flower_run_id:
        return
    unreachable_since = time.monotonic()
    while True:
        try:
            state = control.run_state(home, run.flower_run_id)
            break
        except control.ControlError:
            return  # the SuperLink answered, and holds no such run: nothing goes on to stop
        except Exception as exc:  # noqa: BLE001 - connection refused, reset, timeouts...
            if time.monotonic() - unreachable_since > conf.superlink_lost_s():
                log.warning("could not ask the SuperLink about stopped run %s (flower run %s): %s",
                            run.pk, run.flower_run_id, exc)
                return
            time.sleep(poll_s)
    if not state.finished:
        log.warning("federated run %s is stopped but its flower run %s was still going: stopping it",
                    run.pk, run.flower_run_id)
        services.stop_flower_run(run.flower_run_id, home)
