import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from tests.diagnostics.ml.helpers import FIGSHARE, dicom_bytes, kaggle_file, kaggle_slice, requires_data, shared_tiny_bundle

pytestmark = requires_data


def _run(*args):
    import io

    out = io.StringIO()
    call_command("predict", *args, "--model-dir", str(shared_tiny_bundle()), stdout=out)
    return out.getvalue()


def test_json_lines_and_mask_files(tmp_path):
    jpeg, png = kaggle_file("glioma"), FIGSHARE / "images" / "3.png"
    dicom = tmp_path / "series.dcm"
    dicom.write_bytes(dicom_bytes(kaggle_slice("pituitary")))
    masks = tmp_path / "masks"
    lines = [json.loads(line) for line in _run(str(jpeg), str(png), str(dicom), "--json", "--mask-dir", str(masks)).splitlines()]
    assert [line["file"] for line in lines] == [str(jpeg), str(png), str(dicom)]
    for line, source in zip(lines, (jpeg, png, dicom)):
        assert line["label"] in {"glioma", "meningioma", "notumor", "pituitary"}
        assert set(line["probabilities"]) == {"glioma", "meningioma", "notumor", "pituitary"}
        assert sum(line["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
        mask = np.asarray(Image.open(masks / f"{source.name}.png"))
        expected_shape = Image.open(source).size[::-1] if source.suffix != ".dcm" else kaggle_slice("pituitary").shape
        assert mask.shape == tuple(expected_shape)
        assert set(np.unique(mask)) <= {0, 255}
        assert (line["tumour_area_px"] > 0) == line["tumour_found"] == bool(mask.any())
    assert lines[2]["tumour_area_mm2"] is None or lines[2]["tumour_area_mm2"] == pytest.approx(lines[2]["tumour_area_px"] * 0.25)


def test_human_output_names_label_and_probabilities():
    text = _run(str(kaggle_file("notumor")))
    assert text.startswith(str(kaggle_file("notumor")) + ": ")
    assert "notumor" in text and "glioma" in text


def test_unreadable_file_reports_an_error_line_and_fails(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    import io

    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("predict", str(bad), str(kaggle_file("glioma")), "--json", "--model-dir", str(shared_tiny_bundle()),
                     stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0] == {"file": str(bad), "error": "unsupported_type", "detail": lines[0]["detail"]}
    assert lines[1]["label"]


def test_a_file_that_fails_after_decoding_is_reported_and_the_batch_goes_on(tmp_path):
    import io

    first, second = kaggle_file("glioma", 0), kaggle_file("meningioma", 0)
    masks = tmp_path / "masks"
    (masks / f"{first.name}.png").mkdir(parents=True)  # its mask cannot be written there
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 2 files could not be diagnosed"):
        call_command("predict", str(first), str(second), "--json", "--mask-dir", str(masks),
                     "--model-dir", str(shared_tiny_bundle()), stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["file"] == str(first) and lines[0]["error"] == "mask_not_written"
    assert lines[1]["file"] == str(second) and lines[1]["label"]
    assert sorted(path.name for path in masks.iterdir()) == [f"{first.name}.png", f"{second.name}.png"]
    assert (masks / f"{second.name}.png").is_file()


def test_a_mask_that_cannot_be_written_whole_leaves_the_earlier_one_as_it_was(tmp_path, monkeypatch):
    scan = kaggle_file("glioma")
    masks = tmp_path / "masks"
    _run(str(scan), "--mask-dir", str(masks))
    earlier = (masks / f"{scan.name}.png").read_bytes()

    def disk_fills_up(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half a mask")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_fills_up)
    import io

    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 1 files"):
        call_command("predict", str(scan), "--json", "--mask-dir", str(masks), "--model-dir",
                     str(shared_tiny_bundle()), stdout=out)
    assert json.loads(out.getvalue())["error"] == "mask_not_written"
    assert [path.name for path in masks.iterdir()] == [f"{scan.name}.png"]  # no part file left
    assert (masks / f"{scan.name}.png").read_bytes() == earlier


def test_a_mask_that_would_overwrite_an_input_is_refused_before_anything_is_written(tmp_path):
    scan, named_like_its_mask = tmp_path / "x.jpg", tmp_path / "x.jpg.png"
    scan.write_bytes(kaggle_file("glioma").read_bytes())
    Image.open(kaggle_file("meningioma")).save(named_like_its_mask)
    before = named_like_its_mask.read_bytes()
    with pytest.raises(CommandError, match=r"the mask of .*x\.jpg would overwrite the input file .*x\.jpg\.png"):
        _run(str(scan), str(named_like_its_mask), "--mask-dir", str(tmp_path))
    assert named_like_its_mask.read_bytes() == before


def test_a_volumes_slice_is_reported_as_the_file_numbers_it(tmp_path):
    from tests.diagnostics.ml.helpers import nifti_bytes

    head = kaggle_slice("glioma").astype(np.float32)
    volume = np.zeros(head.shape[::-1] + (8,), np.float32)
    volume[:, :, 3] = volume[:, :, 4] = np.rot90(head, -1)  # slices 0-2 and 5-7 are air
    path = tmp_path / "volume.nii"
    path.write_bytes(nifti_bytes(volume))
    [line] = [json.loads(line) for line in _run(str(path), "--json").splitlines()]
    assert line["slices"] == 8 and line["slice"] in (3, 4)
    assert f"[slice {line['slice'] + 1} of 8]" in _run(str(path))


def test_a_file_name_that_is_not_utf_8_is_printed_with_escapes(tmp_path):
    import io
    import os

    from django.core.management.base import OutputWrapper

    name = tmp_path / os.fsdecode(b"lat\xe9.jpg")
    name.write_bytes(kaggle_file("glioma").read_bytes())
    terminal = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # strict, as a UTF-8 terminal's stdout
    call_command("predict", str(name), "--model-dir", str(shared_tiny_bundle()), stdout=OutputWrapper(terminal))
    terminal.flush()
    assert "lat\\xe9.jpg: " in terminal.buffer.getvalue().decode()


def test_files_whose_masks_would_share_a_name_are_refused_before_any_is_diagnosed(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.jpg").write_bytes(kaggle_file("glioma").read_bytes())
    masks = tmp_path / "masks"
    with pytest.raises(CommandError, match=r"a/x\.jpg and .*b/x\.jpg would write their masks to the same file"):
        _run(str(tmp_path / "a" / "x.jpg"), str(tmp_path / "b" / "x.jpg"), "--mask-dir", str(masks))
    assert not masks.exists()


def test_a_missing_model_folder_is_a_sentence_not_a_traceback(tmp_path):
    with pytest.raises(CommandError, match="no classifier bundle"):
        call_command("predict", str(kaggle_file("glioma")), "--model-dir", str(tmp_path / "nowhere"))


@pytest.mark.django_db
def test_a_registry_without_a_model_or_with_a_tampered_one_is_a_sentence(tmp_path, settings):
    import shutil

    from diagnostics import registry

    settings.MODEL_DIR = tmp_path / "empty"
    with pytest.raises(CommandError, match="no classifier is registered.*promote_model"):
        call_command("predict", str(kaggle_file("glioma")))
    bundle = tmp_path / "bundle"
    shutil.copytree(shared_tiny_bundle(), bundle)
    registry.promote_model_version(registry.register_model_version(
        task="classify", version="v1", artifact_path=str(bundle / "classifier.json")))
    (bundle / "classifier.tflite").write_bytes(b"changed after registration")
    with pytest.raises(CommandError, match="does not match its registered checksum.*rollback_model"):
        call_command("predict", str(kaggle_file("glioma")))


def test_the_input_gate_refuses_what_is_no_mri_and_flags_what_is_unusual(tmp_path):
    """As an upload would be: the classifier names a class for any picture."""
    import io

    from tests.diagnostics.samples import checkerboard

    board, noise = tmp_path / "board.png", tmp_path / "noise.png"
    Image.fromarray(checkerboard()).save(board)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256), dtype=np.uint8)).save(noise)
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 3 files"):
        call_command("predict", str(board), str(noise), str(kaggle_file("glioma")), "--json",
                     "--model-dir", str(shared_tiny_bundle()), stdout=out)
    refused, unusual, real = [json.loads(line) for line in out.getvalue().splitlines()]
    assert refused["error"] == "not_brain_mri" and "does not look like a brain MRI" in refused["detail"]
    assert unusual["unusual_image"] is True and unusual["input_distance"] > 0
    assert real["unusual_image"] is False
    assert "UNUSUAL IMAGE" in _run(str(noise)) and "UNUSUAL IMAGE" not in _run(str(kaggle_file("glioma")))


def test_a_mask_folder_that_is_a_file_is_a_sentence_not_a_traceback(tmp_path):
    taken = tmp_path / "masks"
    taken.write_text("a file already has this name")
    with pytest.raises(CommandError, match=r"--mask-dir .*masks is a file; give a folder to write the masks in"):
        _run(str(kaggle_file("glioma")), "--mask-dir", str(taken))
    assert taken.read_text() == "a file already has this name"


def test_a_folder_given_as_a_scan_is_named_as_one(tmp_path):
    import io

    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 2 files could not be diagnosed"):
        call_command("predict", str(tmp_path), str(kaggle_file("glioma")), "--json", "--model-dir",
                     str(shared_tiny_bundle()), stdout=out)
    folder, scan = [json.loads(line) for line in out.getvalue().splitlines()]
    assert folder == {"file": str(tmp_path), "error": "unreadable",
                      "detail": "This is a folder; give the scan files in it."}
    assert scan["label"]


@pytest.mark.parametrize("damage", [{"classes": None}, {"input_size": None}, {"tflite": None}, {"input_size": 0},
                                    "[]"])
def test_a_damaged_bundle_is_a_sentence_naming_what_is_wrong(tmp_path, damage):
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(shared_tiny_bundle(), bundle)
    info = json.loads((bundle / "classifier.json").read_text())
    (bundle / "classifier.json").write_text(damage if isinstance(damage, str) else json.dumps({**info, **damage}))
    with pytest.raises(CommandError, match=r"the bundles in .* cannot be loaded: .*classifier\.json is not a"):
        call_command("predict", str(kaggle_file("glioma")), "--model-dir", str(bundle))


def test_masks_get_the_mode_a_plain_write_gives_and_long_names_still_fit(tmp_path):
    import os

    long_name = tmp_path / ("s" * 240 + ".jpg")  # its mask's name, 248 bytes, is near the usual 255 limit
    long_name.write_bytes(kaggle_file("glioma").read_bytes())
    masks = tmp_path / "masks"
    _run(str(long_name), "--mask-dir", str(masks))
    umask = os.umask(0)
    os.umask(umask)
    assert (masks / f"{long_name.name}.png").stat().st_mode & 0o777 == 0o666 & ~umask
