"""The federation dashboard and run pages (frontend/views/federation.py)."""

import json
import re

import pytest
from django.utils import timezone

from federation.models import FederatedRound, FederatedRun, RunStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(world):
    both = FederatedRun.objects.create(status=RunStatus.RUNNING, num_rounds=3)
    both.hospitals.set([world.a, world.b])
    FederatedRound.objects.create(
        run=both, number=1, started_at=timezone.now(), finished_at=timezone.now(), global_loss=0.9,
        global_accuracy=0.61, nodes=[{"hospital": "st-anne", "eval_loss": 0.95, "eval_accuracy": 0.6},
                                     {"hospital": "north-general", "eval_loss": 0.85, "eval_accuracy": 0.64}],
    )
    only_b = FederatedRun.objects.create(status=RunStatus.COMPLETED, num_rounds=2)
    only_b.hospitals.set([world.b])
    return both, only_b


def test_anonymous_outsider_and_non_admins(client, world, runs):
    both, _ = runs
    urls = ["/h/st-anne/federation/", f"/h/st-anne/federation/runs/{both.pk}/"]
    for url in urls:
        assert client.get(url)["Location"].startswith("/accounts/login/")
    client.force_login(world.outsider)
    for url in urls:
        assert client.get(url).status_code == 404
    client.force_login(world.doctor_a)
    for url in urls:
        assert client.get(url).status_code == 403


def test_dashboard_lists_only_this_hospitals_runs(client, world, runs):
    both, only_b = runs
    client.force_login(world.admin_a)
    html = client.get("/h/st-anne/federation/").content.decode()
    assert f"/h/st-anne/federation/runs/{both.pk}/" in html
    assert f"runs/{only_b.pk}/" not in html
    assert '<progress max="3" value="1"' in html


def test_run_of_another_hospital_is_not_found_even_to_its_admin_elsewhere(client, world, runs):
    _, only_b = runs
    client.force_login(world.admin_a)
    assert client.get(f"/h/st-anne/federation/runs/{only_b.pk}/").status_code == 404
    assert client.get("/h/st-anne/federation/runs/999999/").status_code == 404
    # B's admin watches it from B's pages, not through A's URL.
    client.force_login(world.admin_b)
    assert client.get(f"/h/north-general/federation/runs/{only_b.pk}/").status_code == 200


def test_run_page_embeds_rounds_and_the_live_socket(client, world, runs):
    both, _ = runs
    client.force_login(world.admin_a)
    html = client.get(f"/h/st-anne/federation/runs/{both.pk}/").content.decode()
    data = json.loads(re.search(r'<script id="run-data" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert data["rounds"][0]["nodes"][1]["eval_accuracy"] == 0.64
    assert f'data-ws="/ws/federation/runs/{both.pk}/"' in html


def test_opt_in_and_out(client, world):
    client.force_login(world.admin_a)
    client.post("/h/st-anne/federation/", {"federation_opt_in": "on"})
    world.a.refresh_from_db()
    assert world.a.federation_opt_in
    page = client.post("/h/st-anne/federation/", {}, follow=True)
    world.a.refresh_from_db()
    assert not world.a.federation_opt_in
    assert "no longer takes part" in page.content.decode()
