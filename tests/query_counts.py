"""What the query-count tests share: a list must cost the same number of queries for 2 rows as for 12."""

import pytest

from diagnostics.models.registry import ModelVersion


def same_for_2_and_12(add_rows, read, count_rows):
    """read() -> (queries, answer); count_rows(answer) -> rows listed. Adds 2 rows, then 10 more."""
    before = count_rows(read()[1])
    add_rows(2)
    few, answer = read()
    assert count_rows(answer) == before + 2
    add_rows(10)
    many, answer = read()
    assert count_rows(answer) == before + 12
    assert many == few, f"{few} queries for {before + 2} rows, {many} for {before + 12}"


@pytest.fixture
def versions(db):
    """A classifier and a segmenter version, for diagnoses whose rows name both."""
    return {
        "model_version": ModelVersion.objects.create(task="classify", version="c1", artifact_path="c.json",
                                                     artifact_sha256="0"),
        "segmenter_version": ModelVersion.objects.create(task="segment", version="s1", artifact_path="s.json",
                                                         artifact_sha256="0"),
    }
