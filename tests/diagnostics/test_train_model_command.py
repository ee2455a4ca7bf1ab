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
                                   ("--hard-slice-copies", "3", "needs --task segment and weights to score")):
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


def test_a_bad_pseudo_labelling_segmenter_is_refused_before_any_data_is_read(tmp_path):
    cache = tmp_path / "cache"
    segmenter = shared_tiny_bundle() / "segmenter.json"
    common = ["--cache-dir", str(cache), "--output-dir", str(tmp_path / "out")]
    for extra, message in (
            (["--task", "classify", "--pseudo-labels-by", str(segmenter)], "needs --task segment"),
            (["--task", "segment", "--size", "48", "--pseudo-labels-by", str(tmp_path / "nowhere.json")],
             "not a readable model bundle"),
            (["--task", "segment", "--size", "48", "--pseudo-labels-by", str(shared_tiny_bundle() / "classifier.json")],
             "not a segmenter bundle"),
            (["--task", "segment", "--size", "64", "--pseudo-labels-by", str(segmenter)], "made for 48 px input")):
        with pytest.raises(CommandError, match=message):
            call_command("train_model", *common, *extra)
    assert not cache.exists() and not (tmp_path / "out" / "segmenter.json").exists()


def _common(tmp_path, size="48"):
    return ["--size", size, "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(tmp_path / "out")]


@pytest.mark.django_db  # --install looks up whether the installed bundle is a registered version
def test_epochs_size_and_checkpoint_mistakes_are_refused_before_any_data_is_read(tmp_path):
    import h5py

    out = tmp_path / "out"
    out.mkdir()
    with h5py.File(out / "best.weights.h5", "w") as weights:
        weights["start"] = [1.0, 2.0]  # the weights this run starts from
    starting = (out / "best.weights.h5").read_bytes()
    (tmp_path / "notes.weights.h5").write_bytes(b"not weights at all")
    for task, extra, message in (
            ("classify", ["--epochs", "0"], "without a --checkpoint it would export untrained"),
            ("segment", ["--epochs", "0", "--install"], "without a --checkpoint it would export untrained"),
            ("classify", ["--epochs", "-1"], "--epochs must be 0 or more"),
            ("classify", ["--time-budget-min", "0"], "--time-budget-min must be above 0, not 0.0"),
            ("segment", ["--time-budget-min", "-5"], "--time-budget-min must be above 0, not -5.0"),
            ("classify", ["--peak-lr", "0"], "--peak-lr must be above 0"),
            ("classify", ["--batch-size", "-8"], "--batch-size must be above 0, not -8"),
            ("segment", ["--threads", "-1"], r"--threads must be 0 \(all cores\) or more, not -1"),
            ("segment", ["--size", "-48"], "--size must be a positive number"),
            ("classify", ["--checkpoint", str(tmp_path / "missing.weights.h5")], "no checkpoint file at"),
            ("segment", ["--checkpoint", str(tmp_path / "missing.weights.h5"), "--epochs", "0"],
             "no checkpoint file at"),
            ("classify", ["--checkpoint", str(out / "best.weights.h5")], "training would overwrite it"),
            ("classify", ["--checkpoint", str(tmp_path / "notes.weights.h5")], "is not a weights file"),
            ("segment", ["--checkpoint", str(tmp_path / "notes.weights.h5"), "--epochs", "0"],
             "is not a weights file")):
        with pytest.raises(CommandError, match=message):
            call_command("train_model", "--task", task, *_common(tmp_path), *extra)
    assert not (tmp_path / "cache").exists()
    assert (out / "best.weights.h5").read_bytes() == starting
    assert sorted(p.name for p in out.iterdir()) == ["best.weights.h5"]


@pytest.mark.django_db
def test_a_registered_bundle_is_not_written_over_without_the_explicit_flag(tmp_path, settings):
    import shutil

    from diagnostics import registry

    model_dir, out = tmp_path / "weights", tmp_path / "out"
    shutil.copytree(shared_tiny_bundle(), model_dir)
    shutil.copytree(shared_tiny_bundle(), out)
    settings.MODEL_DIR = model_dir
    installed = registry.promote_model_version(registry.register_model_version(
        task="classify", version="baseline-1", artifact_path="classifier.json", source="baseline"))
    trained = registry.register_model_version(task="segment", version="v7", artifact_path=str(out / "segmenter.json"))
    before = {path: path.read_bytes() for folder in (model_dir, out) for path in folder.iterdir()}

    with pytest.raises(CommandError, match=r"registered as model version classify 'baseline-1' \(active\).*"
                                           r"promote_model --register .*--overwrite-registered"):
        call_command("train_model", "--task", "classify", "--install", *_common(tmp_path, "48")[:4],
                     "--output-dir", str(tmp_path / "elsewhere"))
    with pytest.raises(CommandError, match=r"registered as model version segment 'v7' \(candidate\).*"
                                           r"choose another --output-dir"):
        call_command("train_model", "--task", "segment", *_common(tmp_path))
    assert not (tmp_path / "cache").exists() and not (tmp_path / "elsewhere" / "classifier.json").exists()
    assert {path: path.read_bytes() for folder in (model_dir, out) for path in folder.iterdir()} == before
    for version in (installed, trained):
        registry.verify_model_version(version)
    # A bundle that is only a file, not a registered version, is an ordinary output folder.
    trained.delete()
    with pytest.raises(CommandError, match="no checkpoint file"):
        call_command("train_model", "--task", "segment", *_common(tmp_path), "--checkpoint", str(tmp_path / "x.h5"))


def test_widening_mistakes_are_refused_before_any_data_is_read(tmp_path):
    from diagnostics.ml import networks

    narrow = tmp_path / "narrow.weights.h5"
    networks.build_segmenter(48, base_filters=4).save_weights(narrow)
    needs = "--checkpoint-width needs --task segment"
    for extra, message in (
            (["--checkpoint-width", "4", "--width", "6"], needs),  # nothing to widen
            (["--checkpoint", str(narrow), "--checkpoint-width", "4", "--width", "4"], needs),  # not wider
            (["--checkpoint", str(narrow), "--checkpoint-width", "4", "--width", "8",
              "--architecture", "encoder-unet"], needs),
            (["--checkpoint", str(narrow), "--checkpoint-width", "6", "--width", "8"],
             "does not hold a U-Net of 6 base filters"),
            (["--checkpoint", str(narrow), "--checkpoint-width", "4", "--width", "8", "--mirror-channel"],
             "does not hold a U-Net of 4 base filters with the mirror channel")):
        with pytest.raises(CommandError, match=message):
            call_command("train_model", "--task", "segment", *_common(tmp_path), *extra)
    with pytest.raises(CommandError, match=needs):
        call_command("train_model", "--task", "classify", *_common(tmp_path), "--checkpoint", str(narrow),
                     "--checkpoint-width", "4", "--width", "8")
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


def test_a_classifier_bundle_the_export_cannot_use_is_refused_before_any_data_is_read(tmp_path):
    cache = tmp_path / "cache"
    (tmp_path / "broken.json").write_text("{not json")
    for bundle in (tmp_path / "broken.json", shared_tiny_bundle() / "segmenter.json"):
        with pytest.raises(CommandError, match="not a classifier bundle with a 'notumor' class"):
            call_command("train_model", "--task", "segment", "--size", "48", "--cache-dir", str(cache),
                         "--output-dir", str(tmp_path / "out"), "--classifier-bundle", str(bundle))
    assert not cache.exists() and not (tmp_path / "out").exists()


def test_an_output_folder_that_cannot_be_made_is_a_sentence_and_a_refused_run_makes_none(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(CommandError, match=r"cannot make the output folder .*a-file/out.*--output-dir"):
        call_command("train_model", "--task", "gate", "--cache-dir", str(tmp_path / "cache"),
                     "--output-dir", str(tmp_path / "a-file" / "out"))
    with pytest.raises(CommandError, match="no brain-tumor-mri folder under"):
        call_command("train_model", "--task", "classify", "--data-dir", str(tmp_path / "nowhere"),
                     "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(tmp_path / "out"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_an_install_that_fails_midway_leaves_the_live_input_gate_whole(tmp_path, settings, monkeypatch):
    """Workers read the installed gate on every upload: a copy cut short (a full disk) must not leave
    them a truncated file, nor the previous one lost."""
    import shutil

    import numpy as np

    from diagnostics.ml import data, gate

    live = tmp_path / "weights" / "input_gate.json"
    live.parent.mkdir()
    live.write_text('{"the": "live gate"}')
    settings.INPUT_GATE_PATH = live
    # No data is read and no gate fitted: only how the fitted gate reaches its places is under test.
    kaggle = data.ClassificationData(np.zeros((3, gate.GATE_SIZE, gate.GATE_SIZE), np.uint8), np.zeros(3, np.int64),
                                     np.asarray(["train", "calib", "val"]), manifest=[])
    monkeypatch.setattr(data, "kaggle_dataset", lambda *args, **kwargs: kaggle)
    fitted = gate.InputGate(np.zeros(2), np.ones(2), np.eye(2), 1.0, 2.0, {})
    monkeypatch.setattr(gate.InputGate, "fit", classmethod(lambda cls, *args: fitted))
    monkeypatch.setattr(gate, "measure_gate", lambda *args, **kwargs: {"validation": {}, "synthetic_non_mri": {}})

    def copy_cut_short(source, target, **kwargs):
        with open(target, "wb") as fh:
            fh.write(b'{"the": ')
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copy2", copy_cut_short)
    with pytest.raises(CommandError, match="input_gate.json could not be written.*No space left"):
        call_command("train_model", "--task", "gate", "--install", "--cache-dir", str(tmp_path / "cache"),
                     "--output-dir", str(tmp_path / "out"))
    assert [p.name for p in live.parent.iterdir()] == ["input_gate.json"]  # no staging folder left
    assert live.read_text() == '{"the": "live gate"}'
    assert gate.InputGate.load(tmp_path / "out" / "input_gate.json").refuse_threshold == 2.0


def test_mistakes_found_only_after_the_data_had_loaded_are_refused_before_it_is_read(tmp_path):
    import json
    import shutil

    from diagnostics.ml import networks

    cache, out = tmp_path / "cache", tmp_path / "out"
    common = ["--size", "48", "--cache-dir", str(cache), "--output-dir", str(out)]
    segmenter_weights = tmp_path / "segmenter.weights.h5"
    networks.build_segmenter(48, base_filters=4).save_weights(segmenter_weights)
    no_weights = tmp_path / "bundle"
    shutil.copytree(shared_tiny_bundle(), no_weights)
    (no_weights / json.loads((no_weights / "segmenter.json").read_text())["keras_weights"]).unlink()
    only_classification = tmp_path / "data"
    (only_classification / "brain-tumor-mri").mkdir(parents=True)
    for task, extra, message in (
            ("classify", ["--checkpoint", str(segmenter_weights)], "does not hold the weights of the classifier"),
            ("segment", ["--checkpoint", str(segmenter_weights), "--width", "6"],
             "does not hold the weights of the U-Net"),
            ("classify", ["--width", "-1"], "--width must be a positive number of filters"),
            ("segment", ["--ensemble-of", str(no_weights / "segmenter.json")], "cannot load the segmenter bundles"),
            ("classify", ["--data-dir", str(only_classification)], "no figshare-brain-tumor-seg folder under")):
        with pytest.raises(CommandError, match=message):
            call_command("train_model", "--task", task, *common, *extra)
    assert not cache.exists() and not out.exists()
