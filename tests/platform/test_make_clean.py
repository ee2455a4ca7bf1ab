"""`make clean` removes the virtual environment and var/, but not the scans a default MEDIA_ROOT keeps there."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_clean(folder: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "clean"], cwd=folder, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", **env})


def test_make_clean_keeps_stored_scans_unless_told(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    blob = tmp_path / "var" / "media" / "hospitals" / "some-hospital" / "scan" / "blob"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(b"NF1")
    refused = make_clean(tmp_path)
    assert refused.returncode != 0 and "var/media holds stored scans" in refused.stdout
    assert blob.exists()
    assert make_clean(tmp_path, FORCE="1").returncode == 0 and not (tmp_path / "var").exists()


def test_make_clean_removes_a_var_without_scans(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "var" / "media").mkdir(parents=True)
    (tmp_path / "var" / "db.sqlite3").write_bytes(b"")
    assert make_clean(tmp_path).returncode == 0 and not (tmp_path / "var").exists()
