"""The model versions table shows a segmenter's validation figures under the names its evaluation gives them."""

import json

import pytest

pytestmark = pytest.mark.django_db


def test_a_segmenters_mean_dice_is_shown_not_none_recorded(client, world, tmp_path):
    from diagnostics import registry

    bundle = tmp_path / "segment.json"
    bundle.write_text(json.dumps({"task": "segment", "version": "s1"}))
    # The keys evaluate_model writes for a segmenter (and the registry compares candidates by).
    version = registry.register_model_version(task="segment", version="s1", artifact_path=bundle,
                                              metrics={"dice_mean": 0.779, "iou_mean": 0.686, "slices": 332})
    registry.promote_model_version(version)
    client.force_login(world.admin_a)
    html = client.get("/h/st-anne/federation/").content.decode()
    row = html[html.index(">s1</td>"):]
    row = row[:row.index("</tr>")]
    assert "dice_mean 0.779, iou_mean 0.686" in row and "none recorded" not in row
