"""Files replaced together (neurofed.files): all of them, or none."""

import pytest

from neurofed.files import publish, staged


def test_a_folder_in_the_place_of_one_file_leaves_every_file_as_it_was(tmp_path):
    (tmp_path / "report.md").write_text("the previous report")
    (tmp_path / "report.json").mkdir()  # a folder where the report's JSON goes
    with pytest.raises(IsADirectoryError), staged(tmp_path, "report") as staging:
        (staging / "confusion_matrix.png").write_bytes(b"new plot")
        (staging / "report.md").write_text("the new report")
        (staging / "report.json").write_text("{}")
        publish(staging, tmp_path)
    assert (tmp_path / "report.md").read_text() == "the previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.md"]


def test_the_file_naming_the_others_is_renamed_last(tmp_path, monkeypatch):
    import os

    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda source, target: (renamed.append(os.path.basename(target)),
                                                               real_replace(source, target)))
    with staged(tmp_path, "bundle") as staging:
        for name in ("classifier.json", "a.tflite", "z.npz"):
            (staging / name).write_text(name)
        publish(staging, tmp_path, last="classifier.json")
    assert renamed[-1] == "classifier.json" and sorted(renamed) == ["a.tflite", "classifier.json", "z.npz"]
