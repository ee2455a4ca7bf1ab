"""The operator's start form names the model to train, as the hospital admin's does: the segmenter too."""

import numpy as np
import pytest

from federation.models import FederatedRun
from tests.factories import add_reviewed_case

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client, world, django_user_model):
    world.a.federation_opt_in = world.b.federation_opt_in = True
    world.a.save(), world.b.save()
    client.force_login(django_user_model.objects.create_superuser("op10@neurofed.example", "op10@neurofed.example",
                                                                  "op-password-20"))
    return client


def test_the_operator_starts_a_segmenter_run(operator_client, world, django_capture_on_commit_callbacks):
    html = operator_client.get("/operator/federation/").content.decode()
    assert '<select id="model-kind" name="model_kind"><option value="classifier">Tumour classifier</option>' \
           '<option value="segmenter">Tumour segmenter</option></select>' in html
    outline = np.zeros((64, 64), dtype=np.uint8)
    outline[20:40, 20:40] = 1
    add_reviewed_case(world.a, mask=outline), add_reviewed_case(world.b, mask=outline)
    with django_capture_on_commit_callbacks(execute=False):
        page = operator_client.post("/operator/federation/", {"hospitals": ["st-anne", "north-general"],
                                                              "num_rounds": "2", "model_kind": "segmenter"},
                                    follow=True)
    run = FederatedRun.objects.get()
    assert f"Run {run.pk} was asked to start" in page.content.decode()
    assert (run.model_kind, run.num_rounds) == ("segmenter", 2)


def test_an_unknown_model_starts_nothing_and_says_what_to_choose(operator_client, world):
    add_reviewed_case(world.a), add_reviewed_case(world.b)
    page = operator_client.post("/operator/federation/", {"hospitals": ["st-anne", "north-general"],
                                                          "model_kind": "gan"}, follow=True)
    assert "Choose the model to train: the tumour classifier or the tumour segmenter." in page.content.decode()
    assert not FederatedRun.objects.exists()


def test_the_operator_sees_each_hospitals_case_counts_and_is_told_which_fall_short(operator_client, world, settings):
    settings.FEDERATION_MIN_NODE_CASES = 2
    outline = np.zeros((64, 64), dtype=np.uint8)
    outline[20:40, 20:40] = 1
    add_reviewed_case(world.a, mask=outline), add_reviewed_case(world.a, "notumor"), add_reviewed_case(world.b)
    html = operator_client.get("/operator/federation/").content.decode()
    assert "North General <span class=\"muted\">(1 reviewed case, 0 outlined tumours)</span>" in html
    assert "St Anne&#x27;s <span class=\"muted\">(2 reviewed cases, 1 outlined tumour)</span>" in html
    assert "A run takes hospitals with at least 2 of the cases it trains on" in html
    page = operator_client.post("/operator/federation/", {"hospitals": ["st-anne", "north-general"]}, follow=True)
    assert "North General has fewer than that: leave it out, or start the run once more cases are reviewed " \
           "there." in page.content.decode()
    assert not FederatedRun.objects.exists()
