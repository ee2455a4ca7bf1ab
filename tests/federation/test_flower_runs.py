"""End to end on loopback: a real SuperLink, real SuperNodes (with their warm executors), tiny model.

The runs use a 32-pixel, width-4 classifier and a dozen cases per hospital, so a round takes seconds;
what is tested is the deployment: processes, messages, deadlines, records and the live stream.
"""

import json
import threading
import time

import pytest
from django.db import connection
from django.test import Client
from websockets.sync.client import connect

from federation.models import FederatedRound, FederatedRun, RunStatus
from federation.tasks import follow_run
from hospitals.api_tokens import issue_token
from tests.factories import make_user
from tests.federation.conftest import seed_hospital

pytestmark = [pytest.mark.flower, pytest.mark.slow, pytest.mark.timeout(600)]

TINY = {"num_rounds": 2, "local_epochs": 1, "batch_size": 8, "image_size": 32, "model_width": 4,
        "validation_per_class": 3, "min_nodes": 2}


def make_run(hospitals, **params):
    run = FederatedRun.objects.create(**{**TINY, **params})
    run.hospitals.set(hospitals)
    return run


def follow_in_background(run):
    result = {}

    def follow():
        try:
            result["status"] = follow_run(run.pk, poll_s=0.5)
        finally:
            # The thread's own database connection: left open, it keeps the test database from being dropped.
            connection.close()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    return thread, result


def wait_for(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(message)


def http_post(server, path, user, body):
    import urllib.request

    request = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method="POST")
    request.add_header("Authorization", f"Token {issue_token(user)[1]}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_a_run_started_over_the_api_streams_its_rounds_over_the_websocket(federation, federation_worker,
                                                                          asgi_server, world):
    """Operator POSTs a run to daphne; the Celery worker submits it; the admin of a participating
    hospital watches the rounds arrive over a real websocket; each node trained on its own cases only."""
    a = seed_hospital("fl-a", per_class=3, offset=0)  # 12 cases
    b = seed_hospital("fl-b", per_class=2, offset=50)  # 8 cases
    admin = make_user("fl-admin@fl-a.example")
    from hospitals.models import Role
    from hospitals.services import add_member

    add_member(hospital=a, user=admin, role=Role.ADMIN)
    operator = make_user("operator@neurofed.example", is_superuser=True)
    federation.start_superlink()
    federation.start_node(a.slug)
    federation.start_node(b.slug)

    started = time.monotonic()
    status, body = http_post(asgi_server, "/api/v1/federation/runs/", operator,
                             {"hospitals": [a.slug, b.slug], **TINY})
    assert status == 201, body
    client = Client()
    client.force_login(admin)
    events = []
    with connect(f"{asgi_server.ws_url}/ws/federation/runs/{body['id']}/", open_timeout=20,
                 additional_headers={"Cookie": f"sessionid={client.cookies['sessionid'].value}",
                                     "Origin": asgi_server.url}) as socket:
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            try:
                event = json.loads(socket.recv(timeout=max(1, deadline - time.monotonic())))
            except TimeoutError:
                break
            events.append(event)
            if event["kind"] == "finished":
                break
    elapsed = time.monotonic() - started
    run = FederatedRun.objects.get(pk=body["id"])
    assert run.status == RunStatus.COMPLETED, f"{run.failure_reason}\n{events}\n{federation.logs()}"
    assert events[0]["kind"] == "snapshot"
    rounds = [e for e in events if e["kind"] == "round"]
    assert [e["round"] for e in rounds] == [1, 2]
    for event in rounds:
        assert 0.0 <= event["global_accuracy"] <= 1.0 and event["global_loss"] > 0
        assert event["bytes_sent"] > 0 and event["bytes_received"] > 0 and event["duration_s"] > 0
        # A's admin reads A's node and B only as a count (federation/access.py).
        assert {n["hospital"]: n["num_examples"] for n in event["nodes"]} == {"fl-a": 12}
        assert event["other_hospitals"] == 1
    for row in run.rounds.all():
        # Each node reported exactly its own hospital's number of cases: A never read B's, nor B A's.
        assert {n["hospital"]: n["num_examples"] for n in row.nodes} == {"fl-a": 12, "fl-b": 8}
    assert rounds[-1]["global_accuracy"] == pytest.approx(run.rounds.get(number=2).global_accuracy)
    # The guard saw every reply and refused none: only weights and listed metrics came back.
    # Two rounds of train replies and the final evaluation, from each of the two nodes.
    assert run.final_metrics["wire"]["inspected_replies"] >= 6
    assert run.final_metrics["wire"]["rejected_replies"] == []
    assert run.weights_path and run.dropouts == []
    # Under 3 minutes on an idle 2-core machine; the budget here allows for a shared, loaded one.
    assert elapsed < 420, f"the tiny run took {elapsed:.0f} s"
    print(f"tiny run over the API: {elapsed:.0f} s")


def test_a_killed_node_is_recorded_and_too_few_nodes_fail_the_run(federation):
    """Three nodes, two needed: a node killed in round 1 drops out and the round completes with the
    other two; a second node killed in round 2 leaves too few, and the run fails with that reason."""
    hospitals = [seed_hospital(f"fl-{n}", per_class=2, offset=10 * i) for i, n in enumerate("abc")]
    federation.start_superlink()
    for hospital in hospitals:
        federation.start_node(hospital.slug)
    run = make_run(hospitals, num_rounds=3)
    thread, result = follow_in_background(run)

    wait_for(lambda: FederatedRound.objects.filter(run=run, number=1).exists(), 120, "round 1 never started")
    federation.nodes["fl-c"].kill()
    wait_for(lambda: FederatedRound.objects.filter(run=run, number=2).exists(), 150,
             f"round 2 never started\n{federation.logs()}")
    first = FederatedRound.objects.get(run=run, number=1)
    assert first.finished_at is not None
    assert {n["hospital"] for n in first.nodes} == {"fl-a", "fl-b"}
    assert {d["hospital"] for d in first.dropouts} == {"fl-c"}
    federation.nodes["fl-b"].kill()
    thread.join(timeout=150)
    assert not thread.is_alive(), "the run hung"
    run.refresh_from_db()
    assert result["status"] == RunStatus.FAILED
    assert "needs 2" in run.failure_reason or "of the 2 nodes" in run.failure_reason, run.failure_reason
    assert {d["hospital"] for d in run.dropouts} >= {"fl-b", "fl-c"}


def test_a_node_whose_own_minimum_its_hospital_falls_short_of_declines_the_run_before_round_one(federation):
    """The coordinator counts C in (its minimum is the test's 1); C's node is set to want 50 cases. It says
    so when asked who it is: the run goes on over A and B, and C is recorded once, before round 1, rather
    than as a dropout of every round."""
    hospitals = [seed_hospital(f"fl-{n}", per_class=2, offset=10 * i) for i, n in enumerate("abc")]
    federation.start_superlink()
    federation.start_node("fl-a")
    federation.start_node("fl-b")
    federation.start_node("fl-c", FEDERATION_MIN_NODE_CASES="50")
    run = make_run(hospitals, num_rounds=2)
    thread, result = follow_in_background(run)
    thread.join(timeout=420)
    assert not thread.is_alive(), "the run hung"
    run.refresh_from_db()
    assert result["status"] == RunStatus.COMPLETED, f"{run.failure_reason}\n{federation.logs()}"
    for row in run.rounds.all():
        assert {n["hospital"] for n in row.nodes} == {"fl-a", "fl-b"}
        assert row.dropouts == []
    [declined] = run.dropouts
    assert declined["round"] == 0 and declined["phase"] == "join" and declined["hospital"] == "fl-c"
    assert declined["reason"] == ("declined: this hospital has 8 reviewed cases for this model; its node takes "
                                  "part with at least 50 (FEDERATION_MIN_NODE_CASES)")


def test_a_run_under_central_dp_completes_with_batchnorm_statistics_from_the_coordinators_images(federation):
    """Noise on the weights only: the statistics are set from the coordinator's calibration images each
    round, so every variance stays positive and the model measures finite figures."""
    from federation import learning

    a, b = seed_hospital("fl-a", per_class=2, offset=0), seed_hospital("fl-b", per_class=2, offset=40)
    federation.start_superlink()
    federation.start_node(a.slug)
    federation.start_node(b.slug)
    run = make_run([a, b], num_rounds=1, dp_noise_multiplier=0.5, dp_clipping_norm=5.0)
    thread, result = follow_in_background(run)
    thread.join(timeout=420)
    assert not thread.is_alive(), "the run hung"
    run.refresh_from_db()
    assert result["status"] == RunStatus.COMPLETED, f"{run.failure_reason}\n{federation.logs()}"
    assert 0.0 <= run.rounds.get(number=1).global_accuracy <= 1.0
    model = learning.build_model("classifier", run.image_size, run.model_width)
    model.load_weights(run.weights_path)
    variances = [v.numpy() for v in model.weights if "moving_variance" in v.path]
    assert variances and all((v > 0).all() for v in variances)


def test_a_killed_superlink_fails_the_run_within_the_platform_deadline(federation, settings):
    settings.FEDERATION_SUPERLINK_LOST_S = 10
    a = seed_hospital("fl-a", per_class=2, offset=0)
    b = seed_hospital("fl-b", per_class=2, offset=30)
    federation.start_superlink()
    federation.start_node(a.slug)
    federation.start_node(b.slug)
    run = make_run([a, b], num_rounds=5)
    thread, result = follow_in_background(run)
    wait_for(lambda: FederatedRound.objects.filter(run=run, number=1).exists(), 120, "round 1 never started")
    killed = time.monotonic()
    federation.superlink.kill()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the run hung after the SuperLink died"
    run.refresh_from_db()
    assert result["status"] == RunStatus.FAILED and run.status == RunStatus.FAILED
    assert "SuperLink was unreachable" in run.failure_reason
    assert time.monotonic() - killed < 60


def flower_runs_of(home, run: FederatedRun) -> list[str]:
    """Flower's ids of every run the SuperLink holds for this platform run."""
    from flwr.proto.control_pb2 import ListRunsRequest

    from federation import control

    with control._control_client(home) as client:
        response = client.ListRuns(ListRunsRequest())
    found = []
    for flower_run_id, flower_run in response.run_dict.items():
        value = flower_run.override_config.get("platform-run-id")
        if value is not None and int(getattr(value, value.WhichOneof("scalar"))) == run.pk:
            found.append(str(flower_run_id))
    return found


def test_a_redelivered_task_follows_the_run_the_dead_delivery_submitted_instead_of_starting_it_again(
        federation, settings, world):
    from federation import control

    settings.FEDERATION_RUN_DEADLINE_S = 3  # no nodes: the run only has to be followed, then ended
    federation.start_superlink()
    run = make_run([world.a, world.b])
    # The first delivery of the task: the SuperLink took the run, then the worker died before recording it.
    submitted = control.submit_run(federation.home, run.pk)
    follow_run(run.pk, poll_s=0.5, home=federation.home)
    run.refresh_from_db()
    assert run.flower_run_id == submitted
    assert flower_runs_of(federation.home, run) == [submitted], federation.logs()


def test_a_run_stopped_while_it_was_being_submitted_is_stopped_on_the_superlink_too(federation, world):
    from federation import control, services

    federation.start_superlink()
    run = make_run([world.a, world.b])
    # The task has submitted the run and not yet recorded Flower's id when the operator stops it: the
    # stop finds no Flower run to end.
    submitted = control.submit_run(federation.home, run.pk)
    services.stop_federated_run(run=run)
    assert follow_run(run.pk, poll_s=0.5, home=federation.home) == RunStatus.STOPPED
    # Left alone, the Flower run would wait for nodes and train to the end.
    wait_for(lambda: control.run_state(federation.home, submitted).finished, 30,
             f"the Flower run of a stopped run went on\n{federation.logs()}")
    assert control.run_state(federation.home, submitted).sub_status == "stopped"
    assert FederatedRun.objects.get(pk=run.pk).status == RunStatus.STOPPED


def test_a_flower_run_of_an_earlier_database_is_not_taken_for_a_new_run_of_the_same_number(federation, settings,
                                                                                             world):
    from django.utils import timezone

    from federation import control

    settings.FEDERATION_RUN_DEADLINE_S = 3
    federation.start_superlink()
    run = make_run([world.a, world.b])
    # The SuperLink's state outlived a reset platform database: it holds a finished run for this run's
    # number, submitted before this run existed.
    earlier = control.submit_run(federation.home, run.pk)
    control.stop_run(federation.home, earlier)
    wait_for(lambda: control.run_state(federation.home, earlier).finished, 30, federation.logs())
    FederatedRun.objects.filter(pk=run.pk).update(status=RunStatus.PENDING, flower_run_id="", started_at=None,
                                                  created_at=timezone.now() + control.CLOCK_SKEW * 2)
    follow_run(run.pk, poll_s=0.5, home=federation.home)
    run.refresh_from_db()
    assert run.flower_run_id and run.flower_run_id != earlier, run.failure_reason
    assert sorted(flower_runs_of(federation.home, run)) == sorted([earlier, run.flower_run_id])


def test_a_redelivered_task_that_finds_the_superlink_down_waits_for_it_rather_than_submitting_the_run_again(
        federation, settings, world):
    """The coordinator restarted: the worker's task is redelivered while the SuperLink is still coming up.
    Unanswered, the question "does the SuperLink hold this run already?" is not a no."""
    from federation import control

    settings.FEDERATION_RUN_DEADLINE_S = 3
    settings.FEDERATION_SUPERLINK_LOST_S = 120
    federation.start_superlink()
    run = make_run([world.a, world.b])
    # The first delivery: the SuperLink took the run, then the machine went down before the run recorded it.
    submitted = control.submit_run(federation.home, run.pk)
    federation.superlink.stop(timeout=10)
    FederatedRun.objects.filter(pk=run.pk).update(status=RunStatus.PENDING, flower_run_id="", started_at=None)
    thread, result = follow_in_background(run)
    time.sleep(5)
    federation.start_superlink()
    thread.join(timeout=300)
    assert not thread.is_alive()
    run.refresh_from_db()
    assert run.flower_run_id == submitted, (result, run.failure_reason)
    assert flower_runs_of(federation.home, run) == [submitted], federation.logs()
