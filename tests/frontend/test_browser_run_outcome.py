"""A federated run that ended in the middle of a round: its run page says the round did not finish,
instead of the "…" of a round still going and a "none" dropped out that nobody counted."""

import pytest
from django.utils import timezone

from federation import services
from federation.models import FederatedRound, FederatedRun, RunStatus
from tests.factories import PASSWORD
from tests.frontend.conftest import in_other_thread, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def one_round_run(live, world):
    run = FederatedRun.objects.create(status=RunStatus.RUNNING, num_rounds=1)
    run.hospitals.set([world.a, world.b])
    FederatedRound.objects.create(run=run, number=1, started_at=timezone.now())
    return run


def test_a_round_cut_short_by_the_runs_end_reads_as_not_finished(world, one_round_run, new_page):
    page = new_page()
    sign_in(page, world.admin_a, PASSWORD)
    page.goto(f"/h/st-anne/federation/runs/{one_round_run.pk}/")
    page.get_by_text("Live updates on").wait_for()
    assert "1 round over" in page.locator("main p").first.inner_text()
    assert page.locator("#run-progress-text").inner_text() == "0 of 1 round finished; round 1 in progress."
    row = page.locator("#rounds-table tbody tr").first
    # While the run goes on, the round's figures are still to come.
    assert row.locator('td[data-label="Global accuracy"]').inner_text() == "…"
    assert row.locator('td[data-label="Dropped out"]').inner_text() == "…"

    in_other_thread(lambda: services.fail_run(one_round_run.pk, "Round 1 (train): only 1 of 2 nodes replied."))
    page.locator("#run-status").get_by_text("Failed").wait_for()
    assert row.locator('td[data-label="Global accuracy"]').inner_text() == "did not finish"
    assert row.locator('td[data-label="Duration"]').inner_text() == "did not finish"
    assert row.locator('td[data-label="Dropped out"]').inner_text() == "not recorded"

    # The same on a fresh load of the finished run.
    page.reload()
    page.locator("#run-status").get_by_text("Failed").wait_for()
    assert page.locator('#rounds-table td[data-label="Global loss"]').inner_text() == "did not finish"
