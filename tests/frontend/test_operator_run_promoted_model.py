"""The operator's run page once the run's model serves: it says so instead of offering to promote it again."""

import json

import pytest

from federation.models import FederatedRun, RunStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def completed_run(world, tmp_path):
    """A completed run over two hospitals whose registered candidate scored as well as the active v1."""
    from diagnostics import registry

    made = []
    for name in ("v1", "federated-1"):
        bundle = tmp_path / f"{name}.json"
        bundle.write_text(json.dumps({"task": "classify", "version": name}))
        made.append(registry.register_model_version(task="classify", version=name, artifact_path=bundle,
                                                    metrics={"accuracy": 0.91, "macro_f1": 0.9}))
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
