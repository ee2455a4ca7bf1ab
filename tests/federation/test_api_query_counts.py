"""Federated runs' lists cost the same number of queries for 2 rows as for 12, whether the rows are runs,
rounds of a run or hospitals of a run: over the API and in the live socket's first message."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from federation.consumers import FederatedRunConsumer
from federation.models import FederatedRound, FederatedRun, RunStatus
from tests.factories import make_hospital, make_user

pytestmark = pytest.mark.django_db


def _run(*hospitals, rounds=0):
    run = FederatedRun.objects.create(status=RunStatus.RUNNING, num_rounds=20, started_at=timezone.now(),
                                      dropouts=[{"round": 1, "phase": "fit", "hospital": hospitals[-1].slug}])
    run.hospitals.set(hospitals)
    _rounds(run, rounds)
    return run


def _rounds(run, n):
    first = run.rounds.count() + 1
    for number in range(first, first + n):
        FederatedRound.objects.create(
            run=run, number=number, started_at=timezone.now(), finished_at=timezone.now(),
            nodes=[{"hospital": h.slug, "cases": 10} for h in run.hospitals.all()],
            dropouts=[{"round": number, "phase": "fit", "hospital": "somewhere"}])


def _queries(request) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        response = request()
    assert response.status_code == 200, response.content
    return len(captured), response.json()


def _same_for_2_and_12(add_rows, read, count_rows):
    add_rows(2)
    few, body = read()
    assert count_rows(body) == 2
    add_rows(10)
    many, body = read()
    assert count_rows(body) == 12
    assert many == few, f"{few} queries for 2 rows, {many} for 12"


@pytest.fixture
def operator(db):
    return make_user("operator@platform.example", is_superuser=True, is_staff=True)


@pytest.mark.parametrize("watcher", ["operator", "admin"])
def test_the_runs_list(api, world, operator, watcher):
    user = operator if watcher == "operator" else world.admin_a

    def add(n):
        for _ in range(n):
            _run(world.a, world.b, make_hospital(), rounds=2)

    _same_for_2_and_12(add, lambda: _queries(lambda: api(user).get("/api/v1/federation/runs/")),
                       lambda body: len(body["results"]))


@pytest.mark.parametrize("watcher", ["operator", "admin"])
def test_a_runs_rounds_and_hospitals(api, world, operator, watcher):
    user = operator if watcher == "operator" else world.admin_a
    run = _run(world.a, world.b)

    def add(n):
        run.hospitals.add(*[make_hospital() for _ in range(n)])
        _rounds(run, n)

    _same_for_2_and_12(add, lambda: _queries(lambda: api(user).get(f"/api/v1/federation/runs/{run.pk}/")),
                       lambda body: len(body["rounds"]))


def test_the_live_sockets_first_message(world):
    run = _run(world.a, world.b)
    consumer = FederatedRunConsumer()
    consumer.scope = {"user": world.admin_a, "url_route": {"kwargs": {"run_id": str(run.pk)}}}
    consumer.run_id = run.pk

    def snapshot():
        with CaptureQueriesContext(connection) as captured:
            data = consumer.state_now()["run"]
        return len(captured), data

    _same_for_2_and_12(lambda n: _rounds(run, n), snapshot, lambda data: len(data["rounds"]))
