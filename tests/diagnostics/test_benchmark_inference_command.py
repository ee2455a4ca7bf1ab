"""benchmark_inference: every stage beside its reference, and options that cannot work refused up front."""

import json

import pytest
from django.core.management import CommandError, call_command

from tests.diagnostics.ml.helpers import requires_data


@pytest.mark.parametrize("options, message", [
    ({"calls": 0}, "--runs and --calls must be at least 1"),
    ({"runs": -1}, "--runs and --calls must be at least 1"),
    ({"model_dir": "/nonexistent/models"}, r"no classifier bundle \(classifier.json\) in --model-dir"),
    ({"data_dir": "/nonexistent/data"}, "no brain-tumor-mri/Training folder under --data-dir"),
    ({"json": "/nonexistent/folder/figures.json"}, "no folder /nonexistent/folder to write it in"),
    ({"json": "{tmp}/brain-tumor-mri"}, "is a folder; give the name of the file to write"),
])
def test_options_that_cannot_work_are_refused_before_any_timing(options, message, tmp_path):
    (tmp_path / "brain-tumor-mri" / "Training").mkdir(parents=True)  # checked for, never read before timing
    with pytest.raises(CommandError, match=message):
        call_command("benchmark_inference", **{"data_dir": str(tmp_path),
                                               **{k: v.replace("{tmp}", str(tmp_path)) if isinstance(v, str) else v
                                                  for k, v in options.items()}})


@requires_data
@pytest.mark.slow
def test_each_stage_is_timed_beside_its_reference_and_written_whole(tmp_path, capsys):
    figures = tmp_path / "figures.json"
    call_command("benchmark_inference", runs=1, calls=1, json=str(figures))
    rows = json.loads(figures.read_text())
    stages = {(row["stage"], row["batch"]) for row in rows}
    assert stages == {(stage, batch) for stage in ("classify", "segment", "heatmap", "full pipeline")
                      for batch in (1, 16)}
    # Every stage has the served variant and a reference, measured in the same run.
    for stage, batch in stages:
        variants = [row["variant"] for row in rows if (row["stage"], row["batch"]) == (stage, batch)]
        assert len(variants) == 2 and any(v.startswith("reference") for v in variants), (stage, variants)
    assert all(row["p50_ms"] > 0 and row["images_per_s"] > 0 for row in rows)
    assert "| full pipeline | 16 | Predictor.predict_batch |" in capsys.readouterr().out
    assert [path.name for path in tmp_path.iterdir()] == ["figures.json"]
