"""A run's outcome is recorded once: a run stopped or failed while its ServerApp is still going stays so,
and the model that ServerApp ends with is neither kept nor registered, so it can never be promoted."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from federation import learning, services
from federation.models import FederatedRun, RunStatus
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def model():
    # A segmenter: complete_run keeps its weights and registers no bundle, so no data set is needed.
    return learning.build_model(learning.MODEL_SEGMENTER, 32, 2, seed=0)


@pytest.fixture
def federation_home(settings, tmp_path):
    settings.FEDERATION_HOME = tmp_path / "federation"
    return settings.FEDERATION_HOME


def make_run(world, **fields):
    run = FederatedRun.objects.create(model_kind="segmenter", **fields)
    run.hospitals.set([world.a, world.b])
    return run


def events_of(run_id, action) -> list[dict]:
    """The live events of the run published while `action` runs."""
    layer = get_channel_layer()

    async def listen():
        channel = await layer.new_channel()
        await layer.group_add(services.run_group(run_id), channel)
        await asyncio.get_running_loop().run_in_executor(None, action)
        events = []
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=0.5)
            except asyncio.TimeoutError:
                break
            events.append(message["event"])
        await layer.group_discard(services.run_group(run_id), channel)
        return events

    return async_to_sync(listen)()


def test_a_run_that_finishes_is_completed_with_its_model(world, model, federation_home):
    run = make_run(world, status=RunStatus.RUNNING)
    events = events_of(run.pk, lambda: services.complete_run(run.pk, model=model, metrics={"dice": 0.5}))
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and run.final_metrics["dice"] == 0.5
    assert run.weights_path and (federation_home / "models" / f"run-{run.pk}" / "final.weights.h5").exists()
    assert [e["kind"] for e in events] == ["finished"] and events[0]["status"] == RunStatus.COMPLETED


@pytest.mark.parametrize("status, reason", [
    (RunStatus.STOPPED, "Stopped by the platform operator."),
    (RunStatus.FAILED, "The run passed its deadline of 14400 s and was stopped."),
])
def test_a_run_that_ended_before_its_serverapp_stays_ended_and_keeps_no_model(world, model, federation_home,
                                                                              status, reason):
    run = make_run(world, status=RunStatus.RUNNING, flower_run_id="123")
    assert services.fail_run(run.pk, reason, status=status)
    events = events_of(run.pk, lambda: services.complete_run(run.pk, model=model, metrics={"dice": 0.5}))
    run.refresh_from_db()
    assert (run.status, run.failure_reason) == (status, reason)
    assert run.final_metrics == {} and run.weights_path == "" and run.model_version_id == ""
    assert not (federation_home / "models" / f"run-{run.pk}").exists()
    assert events == []


def test_a_stopped_run_cannot_be_promoted_even_when_its_serverapp_finished(api, world, model, federation_home):
    operator = make_user("operator@neurofed.example", is_superuser=True, is_staff=True)
    run = make_run(world, status=RunStatus.RUNNING, flower_run_id="123")
    assert api(operator).post(f"/api/v1/federation/runs/{run.pk}/stop/").json()["status"] == RunStatus.STOPPED
    services.complete_run(run.pk, model=model, metrics={"dice": 0.5})
    refused = api(operator).post(f"/api/v1/federation/runs/{run.pk}/promote/")
    assert refused.status_code == 409 and refused.json()["error"] == "no_candidate"
    assert FederatedRun.objects.get(pk=run.pk).status == RunStatus.STOPPED


def test_a_run_stopped_before_its_serverapp_started_is_not_shown_running(world):
    run = make_run(world, status=RunStatus.PENDING)
    services.fail_run(run.pk, "Stopped by the platform operator.", status=RunStatus.STOPPED)
    events = events_of(run.pk, lambda: services.mark_running(run.pk, flower_run_id="123"))
    run.refresh_from_db()
    assert run.status == RunStatus.STOPPED and run.started_at is None
    assert events == []


def test_a_run_stopped_while_its_classifier_was_being_exported_registers_no_candidate(world, federation_home,
                                                                                       settings):
    """The export (calibration, validation) takes a while; a stop in the meantime wins, and the model
    becomes no candidate at all: one registered then would be on the versions table, promotable from there,
    though its run never finished."""
    import threading
    import time

    from diagnostics.models.registry import ModelVersion

    settings.MODEL_DIR = federation_home / "models"
    run = FederatedRun.objects.create(model_kind="classifier", image_size=32, model_width=2,
                                      validation_per_class=2, status=RunStatus.RUNNING)
    run.hospitals.set([world.a, world.b])
    classifier = learning.build_model(learning.MODEL_CLASSIFIER, 32, 2, seed=0)
    ended = threading.Thread(target=services.complete_run, args=(run.pk,),
                             kwargs={"model": classifier, "metrics": {"accuracy": 0.5}})
    ended.start()
    weights = federation_home / "models" / f"run-{run.pk}" / "final.weights.h5"
    deadline = time.monotonic() + 60
    while not weights.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    services.stop_federated_run(run=run)
    ended.join(timeout=300)
    run.refresh_from_db()
    assert run.status == RunStatus.STOPPED and not run.model_version_id
    assert not ModelVersion.objects.filter(federated_run_id=str(run.pk)).exists()
    assert not weights.parent.exists()  # nor are its weights and bundle left behind


def test_a_classifier_run_that_finishes_registers_its_candidate(world, federation_home, settings):
    from diagnostics.models.registry import ModelVersion

    settings.MODEL_DIR = federation_home / "models"
    run = FederatedRun.objects.create(model_kind="classifier", image_size=32, model_width=2,
                                      validation_per_class=2, status=RunStatus.RUNNING)
    run.hospitals.set([world.a, world.b])
    classifier = learning.build_model(learning.MODEL_CLASSIFIER, 32, 2, seed=0)
    services.complete_run(run.pk, model=classifier, metrics={"accuracy": 0.5})
    run.refresh_from_db()
    version = ModelVersion.objects.get(federated_run_id=str(run.pk))
    assert run.status == RunStatus.COMPLETED and run.model_version_id == str(version.pk)
    assert version.status == "candidate" and run.final_metrics["candidate"] == version.metrics
