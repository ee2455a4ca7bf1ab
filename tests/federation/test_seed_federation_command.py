"""seed_federation: options that cannot work are refused before any hospital is touched."""

import io

import pytest
from django.core.management import CommandError, call_command

from hospitals.models import Hospital
from tests.factories import make_hospital

pytestmark = pytest.mark.django_db


def _untouched(hospital):
    hospital.refresh_from_db()
    return not hospital.federation_opt_in


def test_a_negative_count_or_alpha_is_refused(tmp_path):
    hospital = make_hospital("st-brigid")
    for args, message in ((["--per-hospital", "-1"], "--per-hospital must be at least 1, not -1"),
                          (["--partition", "label-skew", "--alpha", "0"], "--alpha .* must be above 0")):
        with pytest.raises(CommandError, match=message):
            call_command("seed_federation", "--hospitals", hospital.slug, "--opt-in", *args)
    assert _untouched(hospital)


def test_a_missing_data_set_is_a_sentence_not_a_traceback(settings, tmp_path):
    hospital = make_hospital("st-brigid")
    settings.NEUROFED_DATA_DIR = tmp_path / "no-data"
    with pytest.raises(CommandError, match="no brain-tumor-mri data set under .*NEUROFED_DATA_DIR"):
        call_command("seed_federation", "--hospitals", hospital.slug, "--opt-in", "--per-hospital", "2")
    assert _untouched(hospital) and Hospital.objects.count() == 1


def test_each_hospital_gets_outlined_tumours_for_the_segmenter():
    import numpy as np

    from diagnostics.training_data import count_reviewed_cases, reviewed_cases

    hospitals = [make_hospital("st-brigid"), make_hospital("riverside-general")]
    call_command("seed_federation", "--hospitals", "st-brigid,riverside-general", "--opt-in", "--per-hospital", "2",
                 "--outlined-per-hospital", "3")
    for hospital in hospitals:
        assert count_reviewed_cases(hospital) == 5 and count_reviewed_cases(hospital, outlined=True) == 3
        outlines = [mask for _, label, mask in reviewed_cases(hospital) if label != "notumor" and mask is not None]
        assert len(outlines) == 3 and all(np.asarray(mask).any() for mask in outlines)
    with pytest.raises(CommandError, match="--outlined-per-hospital must be 0 or more, not -1"):
        call_command("seed_federation", "--hospitals", "st-brigid", "--outlined-per-hospital", "-1")


def test_hospitals_left_below_a_nodes_minimum_are_named(settings):
    settings.FEDERATION_MIN_NODE_CASES = 4
    make_hospital("st-brigid"), make_hospital("riverside-general"), make_hospital("northfield")
    out = io.StringIO()
    call_command("seed_federation", "--hospitals", "st-brigid", "--per-hospital", "2", "--outlined-per-hospital", "3",
                 stdout=out)
    assert "st-brigid has fewer than 4 outlined tumours: runs of the segmenter leave it out" in out.getvalue()
    out = io.StringIO()
    call_command("seed_federation", "--hospitals", "riverside-general", "--per-hospital", "1",
                 "--outlined-per-hospital", "1", stdout=out)
    assert ("riverside-general has fewer than 4 reviewed cases: runs leave it out (FEDERATION_MIN_NODE_CASES)."
            in out.getvalue())
    out = io.StringIO()
    call_command("seed_federation", "--hospitals", "northfield", "--per-hospital", "4", "--outlined-per-hospital", "4",
                 stdout=out)
    assert "northfield: " in out.getvalue() and "fewer than" not in out.getvalue()


def test_a_node_trains_the_segmenter_on_its_outlined_tumours_and_empty_no_tumour_outlines():
    import numpy as np

    from diagnostics.services import create_reviewed_case
    from federation import learning
    from federation.datasets import hospital_training_set

    hospital = make_hospital("st-brigid")
    call_command("seed_federation", "--hospitals", "st-brigid", "--per-hospital", "1", "--outlined-per-hospital", "4")
    create_reviewed_case(hospital, np.tile(np.arange(64, dtype=np.uint8) * 3, (64, 1)), "notumor")
    x, y = hospital_training_set(hospital, kind=learning.MODEL_SEGMENTER, image_size=32)
    assert x.shape == (5, 32, 32) and y.shape == (5, 32, 32) and y.dtype == bool
    assert sum(mask.any() for mask in y) == 4  # the four tumours outlined, the "No tumour" case empty
    model = learning.build_model(learning.MODEL_SEGMENTER, 32, 2, seed=0)
    stats = learning.train_local(model, learning.MODEL_SEGMENTER, x, y, epochs=1, batch_size=4)
    assert np.isfinite(stats["loss"])
    assert 0.0 <= learning.evaluate(model, learning.MODEL_SEGMENTER, x, y)["dice"] <= 1.0


def test_no_outlined_tumour_is_a_copy_of_an_image_the_coordinator_scores_a_classifier_on():
    """Many Kaggle images are Figshare slices, and an outlined tumour also trains the classifier with its
    class: a copy of a coordinator's calibration or validation image would inflate the candidate's score."""
    import numpy as np

    from diagnostics.ml import dedup
    from diagnostics.ml.data import _hash_file
    from federation.datasets import kaggle_split
    from federation.management.commands.seed_federation import outlined_slices

    chosen = outlined_slices(180)  # what the demo deals to its three hospitals
    assert len(chosen) == 180 and len({s.image_path for s in chosen}) == 180
    for offset in range(3):  # dealt in turn, each hospital still gets every tumour class
        assert {s.label for s in chosen[offset::3]} == {"glioma", "meningioma", "pituitary"}
    scored = kaggle_split("val") + kaggle_split("calib")
    distances = dedup.hamming_matrix(np.asarray([_hash_file(str(s.image_path))[1] for s in chosen], dtype=np.uint64),
                                     np.asarray([int(row["phash"], 16) for row in scored], dtype=np.uint64))
    copies = [(s.label, scored[j]["label"]) for s, j, d in zip(chosen, distances.argmin(axis=1), distances.min(axis=1))
              if d <= dedup.NEAR_DUPLICATE_BITS]
    assert [pair for pair in copies if pair[0] == pair[1]] == []


def test_a_hospital_list_that_names_no_hospital_is_refused(monkeypatch):
    from federation import datasets

    def import_started(*args, **kwargs):
        raise AssertionError("the import started without a hospital to import into")

    monkeypatch.setattr(datasets, "kaggle_split", import_started)
    for hospitals in (",", ",,"):
        with pytest.raises(CommandError, match=f"--hospitals '{hospitals}' names no hospital; give their slugs "
                                               "separated by commas"):
            call_command("seed_federation", "--hospitals", hospitals, "--per-hospital", "2")


def test_asking_for_more_cases_than_the_training_set_holds_is_said(monkeypatch):
    from federation import datasets

    first_rows = datasets.kaggle_split("train")[:8]
    monkeypatch.setattr(datasets, "kaggle_split", lambda split: first_rows)
    make_hospital("st-brigid"), make_hospital("riverside-general")
    out = io.StringIO()
    call_command("seed_federation", "--hospitals", "st-brigid,riverside-general", "--per-hospital", "5",
                 "--outlined-per-hospital", "0", stdout=out)
    assert ("--per-hospital 5 is more than the shared training set holds for 2 hospitals: st-brigid got 4, "
            "riverside-general got 4." in out.getvalue())
