"""The federation dashboard and run pages (frontend/views/federation.py)."""

import json
import re

import pytest
from django.utils import timezone

from federation.models import FederatedRound, FederatedRun, RunStatus
from tests.diagnostics.helpers import register_classifier
from tests.factories import add_reviewed_case

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
    # A's admin reads A's node; North General's figures are the other hospital's (federation.access).
    assert data["rounds"][0]["nodes"] == [{"hospital": "st-anne", "eval_loss": 0.95, "eval_accuracy": 0.6}]
    assert data["rounds"][0]["other_hospitals"] == 1 and data["rounds"][0]["global_accuracy"] == 0.61
    assert f'data-ws="/ws/federation/runs/{both.pk}/"' in html


def test_the_operators_run_page_embeds_every_hospitals_node(client, world, runs, django_user_model):
    both, _ = runs
    client.force_login(django_user_model.objects.create_superuser("op3@neurofed.example", "op3@neurofed.example",
                                                                  "op-password-12"))
    html = client.get(f"/operator/federation/runs/{both.pk}/").content.decode()
    data = json.loads(re.search(r'<script id="run-data" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert [n["hospital"] for n in data["rounds"][0]["nodes"]] == ["st-anne", "north-general"]


def test_run_pages_give_a_private_runs_guarantee_and_say_nothing_of_one_without(client, world, runs,
                                                                               django_user_model):
    both, _ = runs
    private = FederatedRun.objects.create(status=RunStatus.RUNNING, num_rounds=5, dp_noise_multiplier=10.0,
                                          dp_clipping_norm=2.0)
    private.hospitals.set([world.a, world.b])
    client.force_login(world.admin_a)
    html = client.get(f"/h/st-anne/federation/runs/{private.pk}/").content.decode()
    # μ = 2·√5 / 10: ε 1.76 at δ = 1e-5 (tests/federation/test_privacy_budget.py).
    assert "over its 5 rounds, <strong>ε = 1.76</strong> at δ = 10<sup>−5</sup>" in html
    assert "noise multiplier 10.0, clipping norm 2.0" in html
    assert 'id="run-privacy"' not in client.get(f"/h/st-anne/federation/runs/{both.pk}/").content.decode()
    client.force_login(django_user_model.objects.create_superuser("op4@neurofed.example", "op4@neurofed.example",
                                                                  "op-password-12"))
    assert "<strong>ε = 1.76</strong>" in client.get(f"/operator/federation/runs/{private.pk}/").content.decode()
    FederatedRun.objects.filter(pk=private.pk).update(dp_noise_multiplier=1e-12)
    assert "<strong>no meaningful guarantee</strong>" in client.get(
        f"/operator/federation/runs/{private.pk}/").content.decode()


def test_opt_in_and_out(client, world):
    client.force_login(world.admin_a)
    client.post("/h/st-anne/federation/", {"federation_opt_in": "on"})
    world.a.refresh_from_db()
    assert world.a.federation_opt_in
    page = client.post("/h/st-anne/federation/", {}, follow=True)
    world.a.refresh_from_db()
    assert not world.a.federation_opt_in
    assert ("no longer takes part in federated training; a run under way gets nothing more from its node"
            in page.content.decode())


def test_the_admin_sees_the_hospitals_own_case_counts_against_the_minimum(client, world, settings):
    """Counts only, of this hospital alone: what its node would train on, beside the fewest a run takes."""
    import numpy as np

    settings.FEDERATION_MIN_NODE_CASES = 20
    outline = np.zeros((64, 64), bool)
    outline[20:30, 20:30] = True
    add_reviewed_case(world.a, "glioma", mask=outline), add_reviewed_case(world.a, "notumor")
    add_reviewed_case(world.b, "meningioma", mask=outline)
    client.force_login(world.admin_a)
    html = client.get("/h/st-anne/federation/").content.decode()
    counts = re.search(r'<p id="own-cases">(.*?)</p>', html, re.S).group(1)
    assert counts == ("St Anne&#x27;s has 2 reviewed cases, 1 of them a tumour whose outline a doctor drew or "
                      "corrected. A run leaves out a hospital with fewer than 20 reviewed cases (for the classifier) "
                      "or 20 outlined tumours (for the segmenter): an update from fewer patients would say too much "
                      "about each. St Anne&#x27;s has too few for either yet.")
    settings.FEDERATION_MIN_NODE_CASES = 2
    assert "St Anne&#x27;s has too few for the segmenter yet." in client.get("/h/st-anne/federation/").content.decode()
    settings.FEDERATION_MIN_NODE_CASES = 1
    assert "too few" not in client.get("/h/st-anne/federation/").content.decode()
    settings.FEDERATION_MIN_NODE_CASES = 20
    client.force_login(world.admin_b)
    html = client.get("/h/north-general/federation/").content.decode()
    assert "North General has 1 reviewed case, 1 of them a tumour" in html


@pytest.fixture
def versions(tmp_path):
    """Two registered classifier versions: v1 active (it served before), v2 a candidate."""
    from diagnostics import registry

    made = [register_classifier(tmp_path, name, {"accuracy": 0.91, "macro_f1": 0.9}) for name in ("v1", "v2")]
    registry.promote_model_version(made[0])
    return made


def test_admin_sees_model_versions_but_only_the_operator_changes_them(client, world, versions, django_user_model):
    v1, v2 = versions
    client.force_login(world.admin_a)
    html = client.get("/h/st-anne/federation/").content.decode()
    assert "Model versions" in html and "macro_f1 0.900" in html
    assert "/promote/" not in html and "/rollback/" not in html
    for url in (f"/operator/models/{v2.pk}/promote/", "/operator/models/classify/rollback/"):
        assert client.post(url).status_code == 404
        assert client.get(url).status_code == 405
    assert client.get("/operator/federation/").status_code == 404
    v2.refresh_from_db()
    assert v2.status == "candidate"
    client.logout()
    assert client.post(f"/operator/models/{v2.pk}/promote/")["Location"].startswith("/accounts/login/")


def test_operator_promotes_and_rolls_back(client, world, versions, django_user_model):
    from hospitals.models import AuditEvent

    v1, v2 = versions
    operator = django_user_model.objects.create_superuser("operator@neurofed.example", "operator@neurofed.example",
                                                          "operator-password-1")
    client.force_login(operator)
    page = client.post(f"/operator/models/{v2.pk}/promote/", {"next": "/operator/federation/"}, follow=True)
    assert "Classification v2 now serves every hospital." in page.content.decode()
    v1.refresh_from_db(), v2.refresh_from_db()
    assert (v1.status, v2.status) == ("retired", "active")
    page = client.post("/operator/models/classify/rollback/", {"next": "https://evil.example/"}, follow=True)
    assert page.redirect_chain[-1][0] == "/operator/federation/"
    v1.refresh_from_db(), v2.refresh_from_db()
    assert (v1.status, v2.status) == ("active", "retired")
    assert AuditEvent.objects.filter(actor_id=operator.pk, action="model.rollback").exists()
    # v1 was the first to serve: nothing earlier, so no button, and a stale form is refused in words.
    assert "/operator/models/classify/rollback/" not in page.content.decode()
    page = client.post("/operator/models/classify/rollback/", {"next": "/operator/federation/"}, follow=True)
    assert "There is no earlier classification model to go back to." in page.content.decode()
    v1.refresh_from_db()
    assert v1.status == "active"


def test_roll_back_is_offered_only_when_an_earlier_version_once_served(client, world, versions, django_user_model):
    v1, v2 = versions
    client.force_login(django_user_model.objects.create_superuser("op5@neurofed.example", "op5@neurofed.example",
                                                                  "op-password-15"))
    html = client.get("/operator/federation/").content.decode()
    # v1 is the first classifier ever active; v2 only a candidate.
    assert "/operator/models/classify/rollback/" not in html
    assert "No earlier version to go back to" in html and f"/operator/models/{v2.pk}/promote/" in html
    client.post(f"/operator/models/{v2.pk}/promote/")
    html = client.get("/operator/federation/").content.decode()
    assert 'action="/operator/models/classify/rollback/"' in html


def test_operator_promote_refuses_a_changed_artefact(client, versions, django_user_model, tmp_path):
    _, v2 = versions
    (tmp_path / "v2.json").write_text(json.dumps({"task": "classify", "version": "v2", "tampered": True}))
    operator = django_user_model.objects.create_superuser("op@neurofed.example", "op@neurofed.example", "op-password-12")
    client.force_login(operator)
    page = client.post(f"/operator/models/{v2.pk}/promote/", follow=True)
    assert "does not match its registered checksum" in page.content.decode()
    v2.refresh_from_db()
    assert v2.status == "candidate"


def test_operator_starts_a_run_over_opted_in_hospitals(client, world, django_user_model, django_capture_on_commit_callbacks):
    world.a.federation_opt_in = world.b.federation_opt_in = True
    world.a.save(), world.b.save()
    operator = django_user_model.objects.create_superuser("op2@neurofed.example", "op2@neurofed.example", "op-password-12")
    client.force_login(operator)
    html = client.get("/operator/federation/").content.decode()
    assert 'value="st-anne" checked' in html and 'value="north-general" checked' in html
    add_reviewed_case(world.a), add_reviewed_case(world.b)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        page = client.post("/operator/federation/", {"hospitals": ["st-anne", "north-general"], "num_rounds": "2",
                                                     "strategy": "fedprox"}, follow=True)
    run = FederatedRun.objects.get()
    assert f"Run {run.pk} was asked to start; its progress is below." in page.content.decode()
    assert (run.num_rounds, run.strategy) == (2, "fedprox")
    assert len(callbacks) == 1  # the follow-up task, sent once the run is committed
    page = client.post("/operator/federation/", {"hospitals": ["st-anne"]}, follow=True)
    assert "at least 2 hospitals" in page.content.decode()


def test_operator_is_asked_before_a_run_or_a_model_change(client, world, versions, django_user_model):
    world.a.federation_opt_in = world.b.federation_opt_in = True
    world.a.save(), world.b.save()
    v1, v2 = versions
    operator = django_user_model.objects.create_superuser("op4@neurofed.example", "op4@neurofed.example",
                                                          "op-password-12")
    client.force_login(operator)
    html = client.get("/operator/federation/").content.decode()
    assert re.search(r'<form method="post" class="card" data-confirm="Start a federated run', html)
    prompts = dict(re.findall(r'<form method="post" action="([^"]+)"[^>]*?data-confirm="([^"]+)"', html))
    assert "Make classification v2 the active version?" in prompts[f"/operator/models/{v2.pk}/promote/"]
    client.post(f"/operator/models/{v2.pk}/promote/")  # v1 served before v2: something to roll back to
    html = client.get("/operator/federation/").content.decode()
    prompts = dict(re.findall(r'<form method="post" action="([^"]+)"[^>]*?data-confirm="([^"]+)"', html))
    assert "Roll the classification back" in prompts["/operator/models/classify/rollback/"]


def test_admin_starts_a_run_from_the_federation_page(client, world, django_capture_on_commit_callbacks):
    client.force_login(world.admin_a)
    html = client.get("/h/st-anne/federation/").content.decode()
    assert "must take part in federated training before it can start a run" in html
    world.a.federation_opt_in = True
    world.a.save()
    assert "No other hospital takes part" in client.get("/h/st-anne/federation/").content.decode()
    world.b.federation_opt_in = True
    world.b.save()
    html = client.get("/h/st-anne/federation/").content.decode()
    assert 'action="/h/st-anne/federation/start/"' in html and "data-confirm=\"Start a federated run" in html
    assert "St Anne&#x27;s, North General." in html
    refused = client.post("/h/st-anne/federation/start/", {"model_kind": "classifier", "num_rounds": "4"}, follow=True)
    assert "needs at least 2 hospitals with at least 1 case each to train on (scans a doctor has reviewed); St " \
           "Anne&#x27;s has fewer than that." \
           in refused.content.decode()
    add_reviewed_case(world.a), add_reviewed_case(world.b)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        page = client.post("/h/st-anne/federation/start/", {"model_kind": "classifier", "num_rounds": "4"}, follow=True)
    run = FederatedRun.objects.get()
    assert page.redirect_chain[-1][0] == f"/h/st-anne/federation/runs/{run.pk}/"
    assert f"Run {run.pk} over 2 hospitals was asked to start; its progress is below." in page.content.decode()
    assert run.num_rounds == 4 and len(callbacks) == 1
    again = client.post("/h/st-anne/federation/start/", {"model_kind": "classifier", "num_rounds": "4"}, follow=True)
    assert f"Run {run.pk} over these hospitals has not finished yet" in again.content.decode()
    assert FederatedRun.objects.count() == 1
    # While it runs, the page says so in place of a start form whose choices would only be refused.
    html = client.get("/h/st-anne/federation/").content.decode()
    assert 'action="/h/st-anne/federation/start/"' not in html
    assert (f'id="run-in-progress"><a href="/h/st-anne/federation/runs/{run.pk}/">Run {run.pk}</a> over the hospitals '
            "that take part has not finished yet; a new run can start when it has.") in html
    FederatedRun.objects.filter(pk=run.pk).update(status=RunStatus.COMPLETED)
    assert 'action="/h/st-anne/federation/start/"' in client.get("/h/st-anne/federation/").content.decode()


def test_only_the_hospitals_admin_starts_a_run_from_its_page(client, world):
    world.a.federation_opt_in = world.b.federation_opt_in = True
    world.a.save(), world.b.save()
    client.force_login(world.doctor_a)
    assert client.post("/h/st-anne/federation/start/", {"num_rounds": "2"}).status_code == 403
    client.force_login(world.admin_b)
    assert client.post("/h/st-anne/federation/start/", {"num_rounds": "2"}).status_code == 404
    client.force_login(world.admin_a)
    assert client.get("/h/st-anne/federation/start/").status_code == 405
    assert not FederatedRun.objects.exists()


def test_operator_stops_a_run_and_promotes_a_completed_runs_model_from_its_page(client, world, versions, runs,
                                                                                 django_user_model):
    both, only_b = runs
    v1, v2 = versions
    FederatedRun.objects.filter(pk=only_b.pk).update(model_version_id=str(v2.pk))
    operator = django_user_model.objects.create_superuser("op3@neurofed.example", "op3@neurofed.example",
                                                          "op-password-13")
    client.force_login(operator)
    html = client.get(f"/operator/federation/runs/{both.pk}/").content.decode()
    assert f'action="/operator/federation/runs/{both.pk}/stop/"' in html and "/promote/" not in html
    page = client.post(f"/operator/federation/runs/{both.pk}/stop/", follow=True)
    assert f"Run {both.pk} stopped." in page.content.decode()
    both.refresh_from_db()
    assert both.status == RunStatus.STOPPED
    again = client.post(f"/operator/federation/runs/{both.pk}/stop/", follow=True)
    assert "has already finished" in again.content.decode()

    html = client.get(f"/operator/federation/runs/{only_b.pk}/").content.decode()
    assert f'action="/operator/federation/runs/{only_b.pk}/promote/"' in html and "/stop/" not in html
    page = client.post(f"/operator/federation/runs/{only_b.pk}/promote/", follow=True)
    assert "now serves every hospital" in page.content.decode()
    v2.refresh_from_db()
    assert v2.status == "active"


def test_only_the_operator_stops_or_promotes_and_admins_see_no_such_buttons(client, world, runs):
    both, _ = runs
    client.force_login(world.admin_a)
    html = client.get(f"/h/st-anne/federation/runs/{both.pk}/").content.decode()
    assert "/stop/" not in html and "/promote/" not in html
    for action in ("stop", "promote"):
        assert client.post(f"/operator/federation/runs/{both.pk}/{action}/").status_code == 404
    both.refresh_from_db()
    assert both.status == RunStatus.RUNNING


EMBEDDED_SENTENCE = "Federated learning needs the services mode: PostgreSQL, Redis and the Flower processes"


@pytest.fixture
def embedded(settings, world):
    """Embedded mode as platform/settings.py sets it up: no broker, so no worker and no SuperLink."""
    settings.CELERY_BROKER_URL = ""
    world.a.federation_opt_in = world.b.federation_opt_in = True
    world.a.save(), world.b.save()
    return world


def test_in_embedded_mode_the_admin_is_told_federation_needs_services_and_no_run_starts(client, embedded):
    client.force_login(embedded.admin_a)
    html = client.get("/h/st-anne/federation/").content.decode()
    assert EMBEDDED_SENTENCE in html and "The two modes" in html
    assert "/h/st-anne/federation/start/" not in html and "Start run" not in html
    assert "has not taken part in a federated run yet." in html and "Start one above" not in html
    page = client.post("/h/st-anne/federation/start/", {"model_kind": "classifier", "num_rounds": "2"}, follow=True)
    assert page.redirect_chain[-1][0] == "/h/st-anne/federation/"
    assert EMBEDDED_SENTENCE in page.content.decode() and "asked to start" not in page.content.decode()
    assert not FederatedRun.objects.exists()


def test_in_embedded_mode_the_operator_is_told_federation_needs_services_and_no_run_starts(client, embedded,
                                                                                           django_user_model):
    client.force_login(django_user_model.objects.create_superuser("op6@neurofed.example", "op6@neurofed.example",
                                                                  "op-password-16"))
    html = client.get("/operator/federation/").content.decode()
    assert EMBEDDED_SENTENCE in html
    assert 'name="hospitals"' not in html and "Start the run" not in html
    page = client.post("/operator/federation/", {"hospitals": ["st-anne", "north-general"]}, follow=True)
    assert EMBEDDED_SENTENCE in page.content.decode() and "asked to start" not in page.content.decode()
    assert not FederatedRun.objects.exists()


def test_run_pages_name_the_hospitals_and_wrap_a_long_failure(client, world, runs, django_user_model):
    both, _ = runs
    client.force_login(world.admin_a)
    html = client.get(f"/h/st-anne/federation/runs/{both.pk}/").content.decode()
    assert "rounds over North General, St Anne&#x27;s" in html
    assert re.search(r'<p id="run-failure" class="notice error"', html)  # wraps: test_browser_layout.py
    dashboard = client.get("/h/st-anne/federation/").content.decode()
    assert "North General, St Anne&#x27;s</td>" in dashboard and "north-general, st-anne" not in dashboard
    client.force_login(django_user_model.objects.create_superuser("op7@neurofed.example", "op7@neurofed.example",
                                                                  "op-password-17"))
    html = client.get(f"/operator/federation/runs/{both.pk}/").content.decode()
    assert "rounds over North General, St Anne&#x27;s" in html
    assert "North General, St Anne&#x27;s</td>" in client.get("/operator/federation/").content.decode()


def test_operator_promotes_a_version_that_scored_lower_only_by_accepting_the_lower_score(
        client, versions, django_user_model, tmp_path):
    from diagnostics import registry

    v1, _ = versions
    weaker = register_classifier(tmp_path, "federated-3", {"accuracy": 0.53, "macro_f1": 0.531})
    client.force_login(django_user_model.objects.create_superuser("op6@neurofed.example", "op6@neurofed.example",
                                                                  "op-password-16"))
    html = client.get("/operator/federation/").content.decode()
    warning = "The classification model federated-3 scored macro-F1 0.531 on validation, below the active v1&#x27;s 0.900."
    assert warning in html and 'name="accept_lower_score"' in html
    page = client.post(f"/operator/models/{weaker.pk}/promote/", follow=True).content.decode()
    assert "It was not promoted; tick “Accept the lower score” to promote it anyway." in page
    weaker.refresh_from_db(), v1.refresh_from_db()
    assert (weaker.status, v1.status) == ("candidate", "active")
    page = client.post(f"/operator/models/{weaker.pk}/promote/", {"accept_lower_score": "1"}, follow=True)
    assert "Classification federated-3 now serves every hospital." in page.content.decode()
    weaker.refresh_from_db()
    assert weaker.status == "active"


def test_the_lower_score_box_holds_only_against_the_version_the_page_weighed_it_against(
        client, versions, django_user_model, tmp_path):
    from diagnostics import registry

    v1, _ = versions
    weaker = register_classifier(tmp_path, "federated-4", {"accuracy": 0.53, "macro_f1": 0.531})
    client.force_login(django_user_model.objects.create_superuser("op8@neurofed.example", "op8@neurofed.example",
                                                                  "op-password-18"))
    html = client.get("/operator/federation/").content.decode()
    assert f'name="accepted_against" value="{v1.pk}"' in html
    # Another operator promotes a better version meanwhile; the box ticked against v1 does not carry over.
    better = registry.promote_model_version(register_classifier(tmp_path, "v9", {"macro_f1": 0.99}))
    page = client.post(f"/operator/models/{weaker.pk}/promote/", {"accept_lower_score": "1",
                                                                  "accepted_against": str(v1.pk)}, follow=True)
    assert "below the active v9&#x27;s 0.990" in page.content.decode()
    weaker.refresh_from_db(), better.refresh_from_db()
    assert (weaker.status, better.status) == ("candidate", "active")


def test_a_second_roll_back_from_the_same_page_goes_back_no_further(client, versions, django_user_model, tmp_path):
    from diagnostics import registry

    v1, v2 = versions
    registry.promote_model_version(v2)
    v3 = registry.promote_model_version(register_classifier(tmp_path, "v3", {"macro_f1": 0.9}))
    client.force_login(django_user_model.objects.create_superuser("op9@neurofed.example", "op9@neurofed.example",
                                                                  "op-password-19"))
    html = client.get("/operator/federation/").content.decode()
    assert f'name="from_version" value="{v3.pk}"' in html
    for _ in range(2):  # a double click
        page = client.post("/operator/models/classify/rollback/", {"from_version": str(v3.pk)}, follow=True)
    assert "The classification model serving is now v2" in page.content.decode()
    v2.refresh_from_db()
    assert v2.status == "active"


@pytest.mark.parametrize("address", ["/operator/models/%C2%B2/promote/", "/operator/models/%00/rollback/",
                                     "/operator/models/classify%00/rollback/", "/operator/models/999999999999999999999/promote/"])
def test_model_addresses_that_name_nothing_are_not_found(client, django_user_model, address):
    client.force_login(django_user_model.objects.create_superuser("op10@neurofed.example", "op10@neurofed.example",
                                                                  "op-password-20"))
    assert client.post(address).status_code == 404


@pytest.mark.parametrize("posted, said", [
    ({"num_rounds": "-5"}, "Rounds: Ensure this value is greater than or equal to 1. Nothing was started."),
    ({"num_rounds": "100000"}, "Rounds: Ensure this value is less than or equal to 200. Nothing was started."),
    ({"num_rounds": "two"}, "Rounds: A valid integer is required. Nothing was started."),
    ({"strategy": "nope"}, "Strategy: &quot;nope&quot; is not a valid choice. Nothing was started."),
    ({"hospitals": ["st-anne", "gone"]}, "Hospitals: Unknown hospitals: gone. Nothing was started."),
    ({"hospitals": ["st-anne\x00"]}, "Hospitals: Null characters are not allowed. Nothing was started."),
    ({"hospitals": []}, "Choose the hospitals the run goes over: at least two. Nothing was started."),
])
def test_the_operators_start_form_says_what_it_refuses_rather_than_changing_it(client, world, django_user_model,
                                                                               posted, said):
    world.a.federation_opt_in = world.b.federation_opt_in = True
    world.a.save(), world.b.save()
    add_reviewed_case(world.a), add_reviewed_case(world.b)
    client.force_login(django_user_model.objects.create_superuser("op11@neurofed.example", "op11@neurofed.example",
                                                                  "op-password-21"))
    page = client.post("/operator/federation/", {"hospitals": ["st-anne", "north-general"], **posted}, follow=True)
    assert page.status_code == 200 and said in page.content.decode()
    assert not FederatedRun.objects.exists()


def test_run_lists_say_one_round_and_name_the_model(client, world, django_user_model):
    run = FederatedRun.objects.create(status=RunStatus.COMPLETED, num_rounds=1, model_kind="segmenter")
    run.hospitals.set([world.a, world.b])
    client.force_login(django_user_model.objects.create_superuser("op7@neurofed.example", "op7@neurofed.example",
                                                                  "op-password-17"))
    html = client.get("/operator/federation/").content.decode()
    assert re.search(r"Tumour segmenter, [^,<]+, 1 round</span>", html)
    client.force_login(world.admin_a)
    assert "0 of 1 round</span>" in client.get("/h/st-anne/federation/").content.decode()


def test_the_model_versions_table_weighs_every_candidate_in_queries_that_do_not_grow_with_it(
        client, versions, django_user_model, tmp_path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from diagnostics import registry

    client.force_login(django_user_model.objects.create_superuser("op8@neurofed.example", "op8@neurofed.example",
                                                                  "op-password-18"))

    def register_weaker(count, first):
        for number in range(first, first + count):
            register_classifier(tmp_path, f"federated-{number}", {"macro_f1": 0.5})

    def page_queries():
        with CaptureQueriesContext(connection) as queries:
            html = client.get("/operator/federation/").content.decode()
        return len(queries), html

    register_weaker(1, 1)
    few, _ = page_queries()
    register_weaker(8, 2)
    many, html = page_queries()
    assert html.count("below the active v1&#x27;s 0.900.") == 9
    assert many == few
