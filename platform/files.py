"""Files that are replaced together: made in a staging folder beside them, then renamed into place.

A rename within one file system is atomic, so a reader (a worker loading a model, the SuperLink reading
its certificates) sees the old file or the new one, never a part of either; and a write that fails or is
interrupted while the files are made (a full disk, a killed process) leaves the old ones as they were,
not a mix of old and new.

    with staged(folder, "classifier") as staging:
        (staging / "classifier.tflite").write_bytes(...)
        publish(staging, folder, last="classifier.json")
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def staged(folder: Path, name: str):
    """A private folder (0700) inside ``folder`` (same file system, so its files can be renamed into
    place), removed with whatever is left in it when the block ends. Creates ``folder`` if need be;
    raises ``OSError`` when it cannot."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=f".{name}-", suffix=".partial"))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, folder: Path, last: str | None = None) -> None:
    """Rename every file made in ``staging`` into ``folder`` (the one named ``last`` after the others: the
    file that names the rest, so that it never names one not there yet), and remove ``staging``.

    Until this point the files in ``folder`` are untouched; the renames themselves take milliseconds. A
    folder in the place of one of the files is found before any is renamed, so the set is not left
    half replaced (``IsADirectoryError``).
    """
    files = sorted(Path(staging).iterdir(), key=lambda p: p.name == last)
    for path in files:
        if (Path(folder) / path.name).is_dir():
            raise IsADirectoryError(errno.EISDIR, "a folder has the name of a file to be written",
                                    str(Path(folder) / path.name))
    for path in files:
        os.replace(path, Path(folder) / path.name)
    Path(staging).rmdir()
