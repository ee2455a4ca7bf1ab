"""Encrypted blob storage under MEDIA_ROOT/hospitals/<hospital-uuid>/ (DESIGN §3).

Names are random, so no PHI ever appears in a path. Writes go to a temporary file renamed into place,
so a crash never leaves a half-written blob under a real name. Blobs are 0600 and the folders made for
them 0700, whatever the process umask: sealed, a blob still tells how many scans a hospital holds, how
large and when, which is no other local user's business.
"""

import logging
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from hospitals import crypto
from hospitals.keys import hospital_data_key

log = logging.getLogger(__name__)


class BlobIntegrityError(crypto.DecryptionError):
    """The blob decrypted, but its plaintext does not match the SHA-256 recorded when it was stored."""


@dataclass(frozen=True)
class StoredBlob:
    path: str  # relative to MEDIA_ROOT
    sha256: str  # of the plaintext
    size: int  # of the plaintext


def hospital_root(hospital) -> Path:
    return Path(settings.MEDIA_ROOT) / "hospitals" / str(hospital.id)


def _absolute(relative_path: str) -> Path:
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / relative_path).resolve()
    if root not in path.parents:
        raise ValueError("blob path escapes MEDIA_ROOT")
    return path


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


BLOB_FILE_MODE = 0o600
BLOB_FOLDER_MODE = 0o700


def _make_directories(directory: Path) -> None:
    """mkdir -p, each folder it creates 0700 and synced into its parent: a folder's entry, like a renamed
    file's, is on disk only once its parent is synced."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=BLOB_FOLDER_MODE)
            os.chmod(folder, BLOB_FOLDER_MODE)  # mkdir's mode passes through the umask
        except FileExistsError:
            pass  # another writer made it meanwhile, with the same mode; synced below all the same
        _fsync_directory(folder.parent)


def store_blob(hospital, plaintext: bytes, *, record_type: str, record_id) -> StoredBlob:
    aad = crypto.blob_associated_data(str(hospital.id), record_type, str(record_id))
    sealed = crypto.encrypt_blob(hospital_data_key(hospital), plaintext, aad)
    directory = hospital_root(hospital) / record_type
    _make_directories(directory)
    name = secrets.token_hex(16) + ".bin"
    final = directory / name
    temporary = directory / (name + ".tmp")
    try:
        # O_EXCL: a name already there is no file of ours to overwrite.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, BLOB_FILE_MODE)
        with open(fd, "wb") as fh:
            os.fchmod(fh.fileno(), BLOB_FILE_MODE)  # os.open's mode passes through the umask
            fh.write(sealed)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, final)
        # The row naming the blob commits next: without this a power cut could keep the row and lose
        # the rename, leaving a scan whose file is gone.
        _fsync_directory(directory)
    except BaseException:
        # A write cut short (a full disk) leaves a partial file that no row points at and nothing removes;
        # so does a blob renamed into place whose folder then failed to sync (its name is new, so ours).
        temporary.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
        raise
    return StoredBlob(
        path=str(final.relative_to(settings.MEDIA_ROOT)), sha256=crypto.sha256_hex(plaintext), size=len(plaintext)
    )


def read_blob(hospital, relative_path: str, *, record_type: str, record_id, sha256: str | None = None) -> bytes:
    path = _absolute(relative_path)
    try:
        sealed = path.read_bytes()
    except FileNotFoundError as exc:
        raise crypto.DecryptionError("stored blob is missing") from exc
    aad = crypto.blob_associated_data(str(hospital.id), record_type, str(record_id))
    plaintext = crypto.decrypt_blob(hospital_data_key(hospital), sealed, aad)
    if sha256 is not None and crypto.sha256_hex(plaintext) != sha256:
        raise BlobIntegrityError("stored blob does not match its recorded SHA-256")
    return plaintext


def delete_blob(relative_path: str) -> None:
    if relative_path:
        _absolute(relative_path).unlink(missing_ok=True)


def delete_hospital_files(hospital) -> int:
    """Remove a hospital's folder; return how many files and folders under it could not be removed.

    Runs once the hospital's deletion has committed, so what cannot be removed (a file made immutable, a
    folder on a read-only mount) undoes nothing: it is unreadable without the destroyed key, logged,
    counted for the operator, and left for sweep_orphan_blobs, which removes any hospital's folder once
    the hospital is gone.
    """
    root = hospital_root(hospital)
    errors = []
    shutil.rmtree(root, onerror=lambda function, path, exc_info: errors.append(exc_info[1]))
    errors = [error for error in errors if not isinstance(error, FileNotFoundError)]
    if not errors and not root.exists():
        return 0
    left = _entries_under(root)
    if left:
        first = errors[0] if errors else None
        log.warning(
            "hospital %s deleted, but %d of its stored files and folders could not be removed (%s); "
            "sweep_orphan_blobs retries them", hospital.pk, left,
            f"{type(first).__name__}: {first.strerror}" if isinstance(first, OSError) else "cause not reported",
        )
    return left


def _entries_under(root: Path) -> int:
    """Files and folders left under root, root included; a folder that cannot be listed counts as one."""
    if not os.path.lexists(root):
        return 0
    count = 1
    for _folder, folders, files in os.walk(root):
        count += len(folders) + len(files)
    return count
