"""A model that diverged measures as NaN or infinity on the coordinator's validation split. Those are not
figures anyone can read, nor JSON: they are recorded as "not measured" (null), so the run, its rounds and
its live events can still be read, and the run's outcome is still recorded."""

import math

import pytest

from federation import learning, services
from federation.models import FederatedRound, FederatedRun, RunStatus
from federation.server_app import RoundLog
from tests.federation.test_run_outcome import events_of, federation_home, make_run  # noqa: F401

RUNS = "/api/v1/federation/runs/"


@pytest.fixture(scope="module")
def model():
    return learning.build_model(learning.MODEL_SEGMENTER, 32, 2, seed=0)


@pytest.fixture
def operator(db):
    from tests.factories import make_user

    return make_user("operator@neurofed.example", is_superuser=True, is_staff=True)


@pytest.mark.django_db(transaction=True)
def test_a_round_whose_model_diverged_is_recorded_and_shown_without_its_unmeasurable_figures(api, world, operator):
    run = make_run(world, status=RunStatus.RUNNING)
    round_log = RoundLog(1)
    round_log.nodes[7] = {"node_id": "7", "hospital": world.a.slug, "num_examples": 4, "eval_examples": 4,
                          "eval_loss": 1.0, "eval_accuracy": 0.5}
    events = events_of(run.pk, lambda: services.finish_round(
        run.pk, round_log, {"loss": float("nan"), "dice": float("inf"), "iou": 0.1}, 0.5))
    row = FederatedRound.objects.get(run=run, number=1)
    assert row.global_loss is None and row.global_accuracy is None
    assert [e for e in events if e["kind"] == "round"][0]["global_loss"] is None
    for who in (operator, world.admin_a):
        response = api(who).get(f"{RUNS}{run.pk}/")
        assert response.status_code == 200
        assert response.json()["rounds"][0]["global_loss"] is None


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_final_model_diverged_still_completes(api, world, operator, model, federation_home):  # noqa: F811
    run = make_run(world, status=RunStatus.RUNNING)
    services.complete_run(run.pk, model=model, metrics={"loss": float("nan"), "dice": float("-inf"), "iou": 0.2})
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.failure_reason
    assert run.final_metrics["loss"] is None and run.final_metrics["dice"] is None
    assert math.isclose(run.final_metrics["iou"], 0.2)
    assert api(operator).get(f"{RUNS}{run.pk}/").status_code == 200
