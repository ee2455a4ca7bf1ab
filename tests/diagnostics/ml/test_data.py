"""Cached training data: a cache file is whole or absent."""
import pytest

from diagnostics.ml import data


def test_a_cache_write_that_fails_leaves_no_part_file_behind(tmp_path):
    def write_then_fail(fh):
        fh.write(b"half a cache")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        data._write_atomically(tmp_path / "cache" / "kaggle_manifest.json", write_then_fail)
    assert list((tmp_path / "cache").iterdir()) == []
