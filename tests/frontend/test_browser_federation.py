"""The federated run page follows a run live: the federation app's own services record rounds from
another thread (as the ServerApp process does), and the page's progress bar and charts move."""

import time
from types import SimpleNamespace

import pytest
from django.utils import timezone

from federation import services
from federation.models import FederatedRound, FederatedRun, RunStatus
from tests.factories import PASSWORD
from tests.frontend.conftest import assert_fits_width, in_other_thread, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def running(live, world):
    run = FederatedRun.objects.create(status=RunStatus.RUNNING, num_rounds=3)
    run.hospitals.set([world.a, world.b])
    FederatedRound.objects.create(
        run=run, number=1, started_at=timezone.now(), finished_at=timezone.now(), global_loss=1.1,
        global_accuracy=0.5, nodes=[{"hospital": "north-general", "eval_loss": 1.0, "eval_accuracy": 0.52},
                                    {"hospital": "st-anne", "eval_loss": 1.2, "eval_accuracy": 0.47}],
    )
    return run


def test_run_page_moves_with_the_run(world, running, new_page):
    page = new_page()
    sign_in(page, world.admin_a, PASSWORD)
    page.get_by_role("link", name="Federation").click()
    page.get_by_role("link", name=f"Run {running.pk}").click()
    page.get_by_text("Live updates on").wait_for()
    page.get_by_text("1 of 3 rounds finished").wait_for()
    # A's admin: their own hospital and the global model; North General is "1 other hospital".
    assert page.locator("#accuracy-chart circle").count() == 2
    # Hospitals by their names, as the heading lists them, never by their slugs.
    assert "St Anne's, 1 other hospital" in page.locator("#rounds-table").inner_text()
    assert page.locator("#accuracy-chart li").all_inner_texts() == ["St Anne's", "global model"]

    round_log = SimpleNamespace(
        number=2, started=time.time() - 30, dropouts=[], bytes_sent=1_000_000, bytes_received=2_000_000,
        nodes={"a": {"hospital": "st-anne", "eval_loss": 0.8, "eval_accuracy": 0.66, "eval_examples": 40},
               "b": {"hospital": "north-general", "eval_loss": 0.7, "eval_accuracy": 0.7, "eval_examples": 60}},
    )
    in_other_thread(lambda: services.start_round(running.pk, 2))
    page.get_by_text("round 2 in progress").wait_for()
    in_other_thread(lambda: services.finish_round(running.pk, round_log, {"loss": 0.72, "accuracy": 0.69}, 1.5))
    page.get_by_text("2 of 3 rounds finished").wait_for()
    assert page.locator("#run-progress").evaluate("bar => bar.value") == 2
    page.wait_for_function("document.querySelectorAll('#accuracy-chart circle').length === 4")
    assert "69.0%" in page.locator("#rounds-table").inner_text()

    # A node that declined the run before round 1 is named on the run, not on a round; another hospital's
    # without its name or its reason.
    declined = {"round": 0, "phase": "join", "hospital": "north-general", "node_id": "9",
                "reason": "declined: this hospital has 4 reviewed cases for this model"}
    in_other_thread(lambda: services.record_dropout(running.pk, declined))
    page.get_by_text("Did not join: another hospital.").wait_for()
    assert "4 reviewed cases" not in page.content()

    in_other_thread(lambda: services.fail_run(running.pk, "Only one hospital answered round 3; two are needed."))
    page.locator("#run-status").get_by_text("Failed").wait_for()
    # The reason may quote another hospital's node: the operator reads it, an admin is told who has it.
    page.get_by_text("The run failed before it finished. The platform operator has the details.").wait_for()
    assert "Only one hospital answered" not in page.content()
    assert_fits_width(page)
    screenshot(page, "flow-federation-run-live")


def test_dashboard_progress_follows_unfinished_runs(world, running, new_page):
    page = new_page()
    sign_in(page, world.admin_a, PASSWORD)
    page.get_by_role("link", name="Federation").click()
    row = page.locator("tr", has=page.get_by_role("link", name=f"Run {running.pk}"))
    row.get_by_text("1 of 3 rounds").wait_for()
    page.wait_for_function("document.querySelector('tr[data-ws] progress').value === 1")
    round_log = SimpleNamespace(
        number=2, started=time.time() - 30, dropouts=[], bytes_sent=1_000_000, bytes_received=2_000_000,
        nodes={"a": {"hospital": "st-anne", "eval_loss": 0.8, "eval_accuracy": 0.66, "eval_examples": 40}},
    )
    # Whether the socket's snapshot or its events bring them, the new rounds reach the row without a reload.
    in_other_thread(lambda: services.start_round(running.pk, 2))
    in_other_thread(lambda: services.finish_round(running.pk, round_log, {"loss": 0.72, "accuracy": 0.69}, 1.5))
    row.get_by_text("2 of 3 rounds").wait_for()
    assert row.locator("progress").evaluate("bar => bar.value") == 2
    in_other_thread(lambda: services.fail_run(running.pk, "Only one hospital answered round 3; two are needed."))
    row.locator("[data-status]").get_by_text("Failed").wait_for()
