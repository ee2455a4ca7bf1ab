"""hospitals/storage.py: encrypted blobs under MEDIA_ROOT/hospitals/<uuid>/, on real MRI images."""

import shutil
from pathlib import Path

import pytest
from django.conf import settings

from hospitals import crypto, storage
from tests.factories import make_hospital

pytestmark = pytest.mark.django_db

MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG": "PNG", b"DICM": "DICOM"}


def mri_images(count=3):
    root = Path(settings.NEUROFED_DATA_DIR)
    found = sorted((root / "figshare-brain-tumor-seg" / "images").glob("*.png"))[:count]
    found += sorted((root / "brain-tumor-mri" / "Training" / "glioma").glob("*.jpg"))[:count]
    if not found:
        pytest.skip(f"no MRI data under {root}")
    return found


@pytest.fixture
def hospital():
    return make_hospital()


def test_stored_blob_holds_none_of_its_plaintext(hospital):
    for image in mri_images():
        plaintext = image.read_bytes()
        stored = storage.store_blob(hospital, plaintext, record_type="scan", record_id=image.stem)
        sealed = (Path(settings.MEDIA_ROOT) / stored.path).read_bytes()
        assert not any(magic in sealed for magic in MAGIC), image.name
        assert plaintext[:64] not in sealed and plaintext[-64:] not in sealed
        # Keyed by the hospital: the database does not show who else holds the same file.
        assert stored.sha256 == storage.plaintext_digest(hospital, plaintext) != crypto.sha256_hex(plaintext)
        assert stored.size == len(plaintext)
        opened = storage.read_blob(
            hospital, stored.path, record_type="scan", record_id=image.stem, sha256=stored.sha256
        )
        assert opened == plaintext


def test_path_is_random_and_under_the_hospital(hospital):
    image = mri_images(1)[0]
    one = storage.store_blob(hospital, image.read_bytes(), record_type="scan", record_id="record-lovelace")
    two = storage.store_blob(hospital, image.read_bytes(), record_type="scan", record_id="record-lovelace")
    assert one.path != two.path
    assert one.path.startswith(f"hospitals/{hospital.id}/scan/")
    # "lovelace" holds letters past f, so no hex digest or UUID can spell it by chance.
    assert image.name not in one.path and "lovelace" not in one.path
    assert not list((Path(settings.MEDIA_ROOT) / "hospitals").rglob("*.tmp"))


def test_a_flipped_byte_fails_with_a_clear_error(hospital):
    stored = storage.store_blob(hospital, mri_images(1)[0].read_bytes(), record_type="scan", record_id="7")
    path = Path(settings.MEDIA_ROOT) / stored.path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(crypto.DecryptionError, match="altered"):
        storage.read_blob(hospital, stored.path, record_type="scan", record_id="7")


def test_a_blob_moved_to_another_hospital_or_record_does_not_decrypt(hospital):
    other = make_hospital()
    stored = storage.store_blob(hospital, mri_images(1)[0].read_bytes(), record_type="scan", record_id="7")
    # Copied into the other tenant's folder, it is still bound to the first hospital.
    target = storage.hospital_root(other) / "scan" / Path(stored.path).name
    target.parent.mkdir(parents=True)
    shutil.copy(Path(settings.MEDIA_ROOT) / stored.path, target)
    moved = str(target.relative_to(settings.MEDIA_ROOT))
    with pytest.raises(crypto.DecryptionError, match="another hospital or record"):
        storage.read_blob(other, moved, record_type="scan", record_id="7")
    with pytest.raises(crypto.DecryptionError, match="another hospital or record"):
        storage.read_blob(hospital, stored.path, record_type="scan", record_id="8")
    with pytest.raises(crypto.DecryptionError, match="another hospital or record"):
        storage.read_blob(hospital, stored.path, record_type="heatmap", record_id="7")


def test_integrity_hash_mismatch_is_reported(hospital):
    stored = storage.store_blob(hospital, b"plain", record_type="scan", record_id="1")
    with pytest.raises(storage.BlobIntegrityError):
        storage.read_blob(hospital, stored.path, record_type="scan", record_id="1", sha256=crypto.sha256_hex(b"other"))


def test_missing_blob_and_escaping_paths(hospital):
    with pytest.raises(crypto.DecryptionError, match="missing"):
        storage.read_blob(hospital, f"hospitals/{hospital.id}/scan/none.bin", record_type="scan", record_id="1")
    for outside in ("../../etc/passwd", "/etc/passwd", f"hospitals/{hospital.id}/../../../x.bin", ""):
        with pytest.raises(ValueError, match="escapes"):
            storage.read_blob(hospital, outside, record_type="scan", record_id="1")


def test_blobs_stay_readable_when_the_hospitals_folder_is_on_another_disk(hospital, tmp_path):
    """IT may mount a larger disk at MEDIA_ROOT/hospitals, or link it there."""
    import os

    other_disk = tmp_path / "bigdisk" / "hospitals"
    other_disk.mkdir(parents=True)
    media = Path(settings.MEDIA_ROOT)
    media.mkdir(parents=True, exist_ok=True)
    os.symlink(other_disk, media / "hospitals")
    stored = storage.store_blob(hospital, b"scan bytes", record_type="scan", record_id="1")
    assert (other_disk / str(hospital.id)).is_dir()
    assert storage.read_blob(hospital, stored.path, record_type="scan", record_id="1",
                             sha256=stored.sha256) == b"scan bytes"
    storage.delete_blob(stored.path)
    assert not any(path.is_file() for path in other_disk.rglob("*"))


def test_delete_blob(hospital):
    stored = storage.store_blob(hospital, b"plain", record_type="scan", record_id="1")
    storage.delete_blob(stored.path)
    assert not (Path(settings.MEDIA_ROOT) / stored.path).exists()
    storage.delete_blob(stored.path)  # already gone is fine


def test_a_write_cut_short_leaves_no_partial_file(hospital):
    """A disk that fills up mid-write (here: a file size limit, EFBIG) must not leave the partial
    temporary file behind: nothing would ever point at it or remove it, and it holds disk a full disk needs."""
    import resource
    import signal

    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of the signal
    previous_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4 * 1024 * 1024, previous_limit[1]))
    try:
        with pytest.raises(OSError):
            storage.store_blob(hospital, bytes(8 * 1024 * 1024), record_type="scan", record_id="cut-short")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous_limit)
        signal.signal(signal.SIGXFSZ, previous_handler)
    root = storage.hospital_root(hospital)
    assert [path for path in root.rglob("*") if path.is_file()] == []


def test_blobs_and_their_folders_are_private_to_the_platform_user_whatever_the_umask(hospital):
    """Another local user may neither read a blob nor list a hospital's folders: sealed blobs still tell
    how many scans a hospital holds, how large and when. A permissive umask (a shell's 0022, or 0) must
    not loosen that."""
    import os
    import stat

    previous = os.umask(0)
    try:
        stored = storage.store_blob(hospital, b"\x89PNG scan", record_type="scan", record_id="modes")
    finally:
        os.umask(previous)
    blob = Path(settings.MEDIA_ROOT) / stored.path
    assert stat.S_IMODE(blob.stat().st_mode) == 0o600
    for folder in (blob.parent, storage.hospital_root(hospital), storage.hospital_root(hospital).parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
