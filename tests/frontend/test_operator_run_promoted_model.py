"""The operator's run page once the run's model serves: it says so instead of offering to promote it again."""

import pytest

from federation.models import FederatedRun, RunStatus
from tests.diagnostics.helpers import register_classifier

pytestmark = pytest.mark.django_db


@pytest.fixture
def completed_run(world, tmp_path):
    """A completed run over two hospitals whose registered candidate scored as well as the active v1."""
    from diagnostics import registry

    made = [register_classifier(tmp_path, name, {"accuracy": 0.91, "macro_f1": 0.9})
            for name in ("v1", "federated-1")]
    registry.promote_model_version(made[0])
    run = FederatedRun.objects.create(status=RunStatus.COMPLETED, num_rounds=2, model_version_id=str(made[1].pk))
    run.hospitals.set([world.a, world.b])
    return run, made[1]


def test_a_promoted_runs_page_says_its_model_serves_and_offers_no_promotion(client, completed_run,
                                                                             django_user_model):
    run, candidate = completed_run
    client.force_login(django_user_model.objects.create_superuser("op9@neurofed.example", "op9@neurofed.example",
                                                                  "op-password-19"))
    promote_action = f'action="/operator/federation/runs/{run.pk}/promote/"'
    assert promote_action in client.get(f"/operator/federation/runs/{run.pk}/").content.decode()
    page = client.post(f"/operator/federation/runs/{run.pk}/promote/", follow=True).content.decode()
    assert "now serves every hospital" in page
    assert promote_action not in page and "Promote its model" not in page
    assert 'id="candidate-active">Its model, classification federated-1, serves every hospital since' in page


def test_a_model_rolled_back_from_can_be_promoted_again_from_its_runs_page(client, completed_run,
                                                                          django_user_model):
    from diagnostics import registry

    run, candidate = completed_run
    registry.promote_model_version(candidate)
    registry.rollback_model("classify")
    client.force_login(django_user_model.objects.create_superuser("op9@neurofed.example", "op9@neurofed.example",
                                                                  "op-password-19"))
    html = client.get(f"/operator/federation/runs/{run.pk}/").content.decode()
    assert f'action="/operator/federation/runs/{run.pk}/promote/"' in html and "candidate-active" not in html


def test_a_run_model_that_scored_lower_is_promoted_from_its_page_only_with_the_box_ticked(
        client, completed_run, django_user_model):
    run, candidate = completed_run
    candidate.metrics = {"accuracy": 0.53, "macro_f1": 0.531}
    candidate.save(update_fields=["metrics"])
    client.force_login(django_user_model.objects.create_superuser("op9@neurofed.example", "op9@neurofed.example",
                                                                  "op-password-19"))
    html = client.get(f"/operator/federation/runs/{run.pk}/").content.decode()
    assert "scored macro-F1 0.531 on validation, below the active v1&#x27;s 0.900." in html
    assert 'name="accept_lower_score"' in html
    page = client.post(f"/operator/federation/runs/{run.pk}/promote/", follow=True).content.decode()
    # The page's own words: the box beside the button, not the API's "promote it again accepting …".
    assert "It was not promoted; tick “Accept the lower score” to promote it anyway." in page
    candidate.refresh_from_db()
    assert candidate.status == "candidate"
    client.post(f"/operator/federation/runs/{run.pk}/promote/", {"accept_lower_score": "1"})
    candidate.refresh_from_db()
    assert candidate.status == "active"
