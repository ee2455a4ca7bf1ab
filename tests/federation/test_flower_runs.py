"""End to end on loopback: a real SuperLink, real SuperNodes, tiny model, a couple of rounds."""

import time

import pytest

from federation.models import FederatedRun, RunStatus
from federation.tasks import follow_run
from tests.federation.conftest import seed_hospital

pytestmark = [pytest.mark.flower, pytest.mark.slow, pytest.mark.timeout(300)]

TINY = {"num_rounds": 2, "local_epochs": 1, "batch_size": 8, "image_size": 32, "model_width": 4,
        "validation_per_class": 3, "min_nodes": 2}


def make_run(hospitals, **params):
    run = FederatedRun.objects.create(**{**TINY, **params})
    run.hospitals.set(hospitals)
    return run


def test_two_nodes_complete_a_tiny_run(federation):
    a = seed_hospital("fl-a", per_class=3, offset=0)
    b = seed_hospital("fl-b", per_class=3, offset=50)
    federation.start_superlink()
    federation.start_node(a.slug)
    federation.start_node(b.slug)
    run = make_run([a, b])
    started = time.monotonic()
    status = follow_run(run.pk, poll_s=0.5)
    run.refresh_from_db()
    assert status == RunStatus.COMPLETED, f"{run.failure_reason}\n{federation.logs()}"
    rounds = list(run.rounds.order_by("number"))
    assert [r.number for r in rounds] == [1, 2]
    for row in rounds:
        assert {n["hospital"] for n in row.nodes} == {"fl-a", "fl-b"}
        assert all(n["num_examples"] == 12 for n in row.nodes)
        assert row.global_accuracy is not None and row.bytes_sent > 0 and row.bytes_received > 0
    assert run.dropouts == []
    assert run.final_metrics["wire"]["rejected_replies"] == []
    print(f"tiny run: {time.monotonic() - started:.1f} s; rounds {[round(r.duration_s, 1) for r in rounds]}")
