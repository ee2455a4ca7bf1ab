import pytest
from django.core.management import CommandError, call_command

from tests.diagnostics.ml.helpers import requires_data, shared_tiny_bundle

pytestmark = requires_data


def test_an_ensemble_of_anything_but_segmenter_bundles_is_refused_before_any_data_is_read(tmp_path):
    cache = tmp_path / "cache"
    segmenter = shared_tiny_bundle() / "segmenter.json"
    for members, message in (([segmenter, shared_tiny_bundle() / "classifier.json"], "not a segmenter bundle"),
                             ([segmenter, tmp_path / "nowhere.json"], "not a readable model bundle")):
        with pytest.raises(CommandError, match=message):
            call_command("train_model", "--task", "segment", "--size", "48", "--cache-dir", str(cache),
                         "--output-dir", str(tmp_path / "out"), "--ensemble-of", *map(str, members))
    with pytest.raises(CommandError, match="made for 48 px input"):
        call_command("train_model", "--task", "segment", "--size", "64", "--cache-dir", str(cache),
                     "--output-dir", str(tmp_path / "out"), "--ensemble-of", str(segmenter), str(segmenter))
    with pytest.raises(CommandError, match="needs --task segment"):
        call_command("train_model", "--task", "classify", "--cache-dir", str(cache),
                     "--output-dir", str(tmp_path / "out"), "--ensemble-of", str(segmenter))
    assert not cache.exists() and not (tmp_path / "out" / "segmenter.json").exists()


def test_bad_slice_repetition_options_are_refused_before_any_data_is_read(tmp_path):
    cache = tmp_path / "cache"
    for option, value, message in (("--small-tumour-copies", "0", "at least 1"),
                                   ("--small-tumour-fraction", "1.5", "between 0 and 1"),
                                   ("--hard-slice-copies", "0", "at least 1"),
                                   ("--hard-slice-dice", "0", "in \\(0, 1\\]"),
                                   ("--hard-slice-copies", "3", "needs --task segment and a --checkpoint")):
        with pytest.raises(CommandError, match=message):
            call_command("train_model", "--task", "segment", "--size", "48", "--cache-dir", str(cache),
                         "--output-dir", str(tmp_path / "out"), option, value)
    assert not cache.exists()


def test_a_bad_scoring_segmenter_for_hard_slices_is_refused_before_any_data_is_read(tmp_path):
    cache = tmp_path / "cache"
    segmenter = shared_tiny_bundle() / "segmenter.json"
    common = ["--task", "segment", "--cache-dir", str(cache), "--output-dir", str(tmp_path / "out"),
              "--checkpoint", str(tmp_path / "start.weights.h5")]
    for extra, message in (
            (["--size", "48", "--hard-slices-scored-by", str(segmenter)], "needs --hard-slice-copies of at least 2"),
            (["--size", "48", "--hard-slice-copies", "4", "--hard-slices-scored-by", str(tmp_path / "nowhere.json")],
             "not a readable model bundle"),
            (["--size", "48", "--hard-slice-copies", "4",
              "--hard-slices-scored-by", str(shared_tiny_bundle() / "classifier.json")], "not a segmenter bundle"),
            (["--size", "64", "--hard-slice-copies", "4", "--hard-slices-scored-by", str(segmenter)],
             "made for 48 px input")):
        with pytest.raises(CommandError, match=message):
            call_command("train_model", *common, *extra)
    assert not cache.exists() and not (tmp_path / "out" / "segmenter.json").exists()
