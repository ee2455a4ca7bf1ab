"""Encrypted blob storage under MEDIA_ROOT/hospitals/<hospital-uuid>/ (DESIGN §3).

Names are random, so no PHI ever appears in a path. Writes go to a temporary file renamed into place,
so a crash never leaves a half-written blob under a real name. Blobs are 0600 and the folders made for
them 0700, whatever the process umask: sealed, a blob still tells how many scans a hospital holds, how
large and when, which is no other local user's business.
"""

import hashlib
import hmac
import logging
import os
import re
import secrets
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePosixPath

from django.conf import settings

from hospitals import crypto
from hospitals.keys import hospital_data_key

log = logging.getLogger(__name__)


class BlobIntegrityError(crypto.DecryptionError):
    """The blob decrypted, but its plaintext does not match the digest recorded when it was stored."""


@dataclass(frozen=True)
class StoredBlob:
    path: str  # relative to MEDIA_ROOT
    sha256: str  # of the plaintext, keyed by the hospital: plaintext_digest
    size: int  # of the plaintext


def plaintext_digest(hospital, plaintext: bytes) -> str:
    """The digest kept beside a blob (the `*_sha256` columns) to check what it decrypts to.

    Keyed per hospital, as the upload's content digest is: a plain SHA-256 column would show anyone who
    reads the database that two hospitals hold the same scan, and would let a known image be confirmed by
    hashing it. An HMAC over the plaintext's SHA-256 rather than over the plaintext, so that the plain
    digests of earlier releases convert without decrypting a blob (diagnostics migration 0008).
    """
    return keyed_sha256(hospital, crypto.sha256_hex(plaintext))


def keyed_sha256(hospital, sha256_hex: str) -> str:
    key = hmac.new(hospital_data_key(hospital), b"neurofed:blob-digest:v1", hashlib.sha256).digest()
    return hmac.new(key, bytes.fromhex(sha256_hex), hashlib.sha256).hexdigest()


def hospital_root(hospital) -> Path:
    return Path(settings.MEDIA_ROOT) / "hospitals" / str(hospital.id)


def _absolute(relative_path: str) -> Path:
    """The file of a stored path, which must lie under MEDIA_ROOT. Judged by the path's own parts, not by
    resolving links: IT may mount another disk at a folder under MEDIA_ROOT (a hospital's, or all of
    them), and a resolved path there would look like an escape; the paths stored are the platform's own."""
    relative = PurePosixPath(relative_path)
    if not relative.parts or relative.is_absolute() or any(part in ("..", ".") for part in relative.parts) \
            or "\\" in relative_path or "\x00" in relative_path:
        raise ValueError("blob path escapes MEDIA_ROOT")
    return Path(settings.MEDIA_ROOT).resolve() / relative


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
        path=str(final.relative_to(settings.MEDIA_ROOT)), sha256=plaintext_digest(hospital, plaintext),
        size=len(plaintext)
    )


def read_blob(hospital, relative_path: str, *, record_type: str, record_id, sha256: str | None = None) -> bytes:
    path = _absolute(relative_path)
    try:
        sealed = path.read_bytes()
    except FileNotFoundError as exc:
        raise crypto.DecryptionError("stored blob is missing") from exc
    aad = crypto.blob_associated_data(str(hospital.id), record_type, str(record_id))
    plaintext = crypto.decrypt_blob(hospital_data_key(hospital), sealed, aad)
    if sha256 is not None:
        plain = crypto.sha256_hex(plaintext)
        # A plain SHA-256 is one an earlier release stored that migration 0008 could not convert (the
        # hospital's master key was not configured then); it checks the plaintext as well.
        if sha256 not in (keyed_sha256(hospital, plain), plain):
            raise BlobIntegrityError("stored blob does not match its recorded digest")
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


# --- orphans ---------------------------------------------------------------------------------------------
# A process killed (SIGKILL, out of memory, a power cut) between store_blob and the commit of the row that
# names the file leaves a file no row names; so does a crash inside delete_hospital's clean-up, which leaves
# the folder of a hospital that no longer exists. Nothing else removes either.

# What store_blob writes, and the temporary file a kill can leave beside it. Anything else under a
# hospital's folder was put there by someone else and is left alone.
_BLOB_NAME = re.compile(r"[0-9a-f]{32}\.bin(\.tmp)?")


def blob_path_fields() -> list[tuple[type, str]]:
    """Every (model, field) whose column names a blob: each model lists its own in BLOB_PATH_FIELDS."""
    from django.apps import apps

    return [(model, name) for model in apps.get_models() for name in getattr(model, "BLOB_PATH_FIELDS", ())]


def named_blob_paths(paths) -> set[str]:
    """The ones of `paths` (relative to MEDIA_ROOT) that some row names."""
    paths, named = list(paths), set()
    for start in range(0, len(paths), 1000):
        chunk = paths[start:start + 1000]
        for model, name in blob_path_fields():
            named.update(model.objects.filter(**{f"{name}__in": chunk}).values_list(name, flat=True))
    return named


@dataclass
class OrphanCandidates:
    """Blob files older than the cutoff, found before the rows are asked about them."""

    files: list[Path] = field(default_factory=list)
    # Folders of hospitals that no longer exist, each with its folders' mtimes as found (None: not one's).
    gone_hospital_folders: dict[Path, dict[Path, float]] = field(default_factory=dict)
    unrecognised: int = 0
    cutoff: float = 0.0


@dataclass
class SweepReport:
    checked: int = 0
    orphans: list[str] = field(default_factory=list)  # relative to MEDIA_ROOT
    orphan_bytes: int = 0
    failed: int = 0
    gone_hospital_folders: int = 0
    folders_removed: int = 0
    unrecognised: int = 0


def find_orphan_candidates(*, hospital=None, older_than: timedelta) -> OrphanCandidates:
    """List the blob files under one hospital's folder, or every hospital's, last written before now -
    `older_than`; with every hospital, also the folders of hospitals that no longer exist.

    The cutoff is what keeps a write in flight safe: its file is new until its row commits.
    """
    from hospitals.models import Hospital

    found = OrphanCandidates(cutoff=time.time() - older_than.total_seconds())
    if hospital is not None:
        folders = [hospital_root(hospital)]
    else:
        base = Path(settings.MEDIA_ROOT) / "hospitals"
        folders = sorted(entry for entry in (base.iterdir() if base.is_dir() else ()) if _is_hospital_folder(entry))
        # Asked after listing: a hospital created meanwhile is then known, its folder not mistaken for a gone one's.
        existing = {str(pk) for pk in Hospital.objects.values_list("pk", flat=True)}
        for folder in folders:
            if folder.name not in existing:
                found.gone_hospital_folders[folder] = {}
    for folder in folders:
        mtimes = found.gone_hospital_folders.get(folder)
        for directory, _subfolders, files in os.walk(folder):
            if mtimes is not None:
                mtimes[Path(directory)] = _mtime(Path(directory))
            for name in files:
                path = Path(directory) / name
                if not _BLOB_NAME.fullmatch(name) or path.is_symlink():
                    found.unrecognised += 1
                    continue
                written = _mtime(path)
                if written is not None and written < found.cutoff:
                    found.files.append(path)
    return found


def sweep_orphan_blobs(candidates: OrphanCandidates, *, dry_run=False, progress=None) -> SweepReport:
    """Delete each candidate file that no row names, then the emptied folders of hospitals that are gone.

    The rows are asked after the files were listed, so a row committed before the question protects its
    file; a row never comes to name an old file later, since store_blob always writes a new one.
    """
    media = Path(settings.MEDIA_ROOT)
    report = SweepReport(unrecognised=candidates.unrecognised,
                         gone_hospital_folders=len(candidates.gone_hospital_folders))
    relative = {str(path.relative_to(media)): path for path in candidates.files}
    named = named_blob_paths(relative)
    for name, path in relative.items():
        report.checked += 1
        if name not in named:
            try:
                size = path.stat().st_size
                if not dry_run:
                    path.unlink()
            except FileNotFoundError:
                pass  # removed meanwhile (a scan deleted): nothing to do
            except OSError as error:
                report.failed += 1
                log.warning("could not remove an orphaned blob of hospital %s (%s: %s)",
                            path.relative_to(media).parts[1], type(error).__name__, error.strerror)
            else:
                report.orphans.append(name)
                report.orphan_bytes += size
        if progress is not None:
            progress(name)
    if not dry_run:
        for mtimes in candidates.gone_hospital_folders.values():
            report.folders_removed += _remove_empty_folders(mtimes, candidates.cutoff)
    return report


def _remove_empty_folders(mtimes: dict[Path, float], cutoff: float) -> int:
    """rmdir, deepest first, each folder that is empty now and was last changed before the cutoff when it
    was listed: a folder made since, for a hospital whose creation has not committed yet, stays."""
    removed = 0
    for folder in sorted(mtimes, key=lambda path: len(path.parts), reverse=True):
        if mtimes[folder] is None or mtimes[folder] >= cutoff:
            continue
        try:
            folder.rmdir()
        except OSError:
            continue  # not empty (a file kept, or one written meanwhile), or not ours to remove
        removed += 1
    return removed


def _is_hospital_folder(entry: Path) -> bool:
    try:
        return entry.is_dir() and str(uuid.UUID(entry.name)) == entry.name
    except ValueError:
        return False


def _mtime(path: Path) -> float | None:
    try:
        return path.lstat().st_mtime
    except FileNotFoundError:
        return None
