import io
import json

from django.core.management import call_command
from PIL import Image

from tests.diagnostics.ml.helpers import requires_data, shared_tiny_bundle

pytestmark = requires_data


def test_the_report_covers_both_tasks_per_class_with_plot_and_latency(tmp_path):
    out = io.StringIO()
    call_command("evaluate_model", "--model-dir", str(shared_tiny_bundle()), "--report-dir", str(tmp_path),
                 "--latency-samples", "5", stdout=out)
    report = json.loads((tmp_path / "report.json").read_text())

    classification = report["classification"]
    assert set(classification["per_class"]) == {"glioma", "meningioma", "notumor", "pituitary"}
    assert sum(map(sum, classification["confusion_matrix"])) == classification["images"]
    assert sum(row["support"] for row in classification["per_class"].values()) == classification["images"]
    assert 0.0 <= classification["ece"] <= 1.0
    low, high = classification["accuracy_interval95"]
    assert low <= classification["accuracy"] <= high
    assert Image.open(tmp_path / "confusion_matrix.png").format == "PNG"

    segmentation = report["segmentation"]
    per_class = segmentation["per_class"]
    assert set(per_class) == {"glioma", "meningioma", "pituitary"}
    assert sum(row["slices"] for row in per_class.values()) == segmentation["slices"]
    weighted = sum(row["dice_mean"] * row["slices"] for row in per_class.values()) / segmentation["slices"]
    assert abs(weighted - segmentation["dice_mean"]) < 1e-9
    assert 0.0 <= segmentation["empty_mask_rate_notumor"] <= 1.0
    low, high = segmentation["dice_mean_interval95"]
    assert low <= segmentation["dice_mean"] <= high
    assert segmentation["dice_interval_blocks"] >= 2

    assert report["latency_ms"]["images"] == 5
    markdown = (tmp_path / "report.md").read_text()
    assert "## Segmentation" in markdown and "| glioma |" in markdown and "## Latency" in markdown
    assert "Dice mean, 95 % interval" in markdown and "accuracy, 95 % interval" in markdown


def test_bad_options_and_missing_folders_are_sentences_and_leave_the_previous_report(tmp_path):
    import pytest
    from django.core.management import CommandError

    from tests.diagnostics.ml.helpers import DATA_DIR

    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "report.json").write_text('{"previous": true}')
    kaggle_only = tmp_path / "kaggle-only"
    kaggle_only.mkdir()
    (kaggle_only / "brain-tumor-mri").symlink_to(DATA_DIR / "brain-tumor-mri")
    bundle = str(shared_tiny_bundle())
    for extra, message in ((["--model-dir", bundle, "--latency-samples", "0"], "--latency-samples must be at least 1"),
                           (["--model-dir", bundle, "--limit", "0"], "--limit must be at least 1"),
                           (["--model-dir", str(tmp_path / "nowhere")], "no classifier bundle"),
                           (["--model-dir", bundle, "--data-dir", str(tmp_path / "nowhere")],
                            "no brain-tumor-mri or figshare-brain-tumor-seg data set under"),
                           (["--model-dir", bundle, "--data-dir", str(kaggle_only)],
                            "no figshare-brain-tumor-seg data set under")):
        with pytest.raises(CommandError, match=message):
            call_command("evaluate_model", "--report-dir", str(reports), *extra)
    assert [p.name for p in reports.iterdir()] == ["report.json"]
    assert (reports / "report.json").read_text() == '{"previous": true}'


def test_a_report_folder_that_cannot_be_made_is_refused_before_the_evaluation(tmp_path, monkeypatch):
    import pytest
    from django.core.management import CommandError

    from diagnostics.ml import data

    def evaluation_started(*args, **kwargs):
        raise AssertionError("the evaluation started before --report-dir was checked")

    monkeypatch.setattr(data, "kaggle_manifest", evaluation_started)
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(CommandError, match=r"cannot make the report folder .*a-file/reports.*--report-dir"):
        call_command("evaluate_model", "--model-dir", str(shared_tiny_bundle()),
                     "--report-dir", str(tmp_path / "a-file" / "reports"))


def test_a_smoke_run_says_so_and_writes_strict_json(tmp_path):
    """A --limit run's figures must not pass for the validation figures, and a class it never saw has no
    figure: null in the JSON, never NaN (which JSON does not have)."""
    call_command("evaluate_model", "--model-dir", str(shared_tiny_bundle()), "--report-dir", str(tmp_path),
                 "--task", "classify", "--limit", "3", "--latency-samples", "1", stdout=io.StringIO())
    report = json.loads((tmp_path / "report.json").read_text(),
                        parse_constant=lambda name: (_ for _ in ()).throw(AssertionError(f"{name} in report.json")))
    assert report["limited_to_first"] == 3
    assert "**Smoke run**: only the first 3 files of each set" in (tmp_path / "report.md").read_text()
