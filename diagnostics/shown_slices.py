"""The slices of the scans last shown, as 8-bit images, kept in each web process for a few minutes.

A viewer browsing a volume asks for each slice by a request of its own, and every request decoded the
whole stored file to answer with one slice: about a second and 430 MB each for a 512-slice volume, so a
doctor scrolling through it kept the web process busy for minutes. The decoded slices of the last few
scans are kept, within a byte budget and for KEEP_S at most, by the scan, the digest of its stored file
(a file stored anew is decoded anew) and the decoding limits. Access is checked by the view before it
asks, at every request. A scan removed through this process is forgotten at once; whatever a process
keeps is swept out KEEP_S after it was decoded, requests or none, so a removed scan's pixels (or a deleted
hospital's) do not stay in memory.
"""

import threading
import time
from collections import OrderedDict

import numpy as np
from django.conf import settings

from diagnostics import services
from hospitals.storage import read_blob

# Enough for a few volumes at once (a 512 × 256 × 256 volume takes 32 MiB as 8-bit slices); a scan larger
# than this alone is decoded for each request, as before.
BUDGET_BYTES = 256 * 1024 * 1024
KEEP_S = 600

_lock = threading.Lock()
_kept: OrderedDict[tuple, tuple[float, list[np.ndarray]]] = OrderedDict()
_sweeper: threading.Timer | None = None


def shown_slices(scan) -> list[np.ndarray]:
    """Every slice of `scan` as shown (services.to_uint8), decoded from its stored file or kept from before."""
    key = (scan.id, scan.blob_sha256, settings.UPLOAD_MAX_BYTES, settings.UPLOAD_MAX_PIXELS,
           settings.UPLOAD_MAX_FRAMES)
    now = time.monotonic()
    with _lock:
        _drop_expired(now)
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key][1]
    data = read_blob(scan.hospital, scan.blob_path, record_type=services.SCAN_BLOB, record_id=scan.id,
                     sha256=scan.blob_sha256)
    slices = [services.to_uint8(image) for image in services.decode_on_record(data).slices]
    if sum(image.nbytes for image in slices) <= BUDGET_BYTES:
        with _lock:
            _kept[key] = (now, slices)
            while sum(image.nbytes for _, kept in _kept.values() for image in kept) > BUDGET_BYTES:
                _kept.popitem(last=False)
            _sweep_later()
    return slices


def _drop_expired(now: float) -> None:
    for key in [key for key, (decoded_at, _) in _kept.items() if now - decoded_at > KEEP_S]:
        del _kept[key]


def _sweep_later() -> None:
    """Have a timer sweep expired slices out, one timer at a time, for as long as any are kept."""
    global _sweeper
    if _sweeper is None and _kept:
        oldest = min(decoded_at for decoded_at, _ in _kept.values())
        _sweeper = threading.Timer(max(oldest + KEEP_S - time.monotonic(), 0) + 1, _sweep)
        _sweeper.daemon = True
        _sweeper.start()


def _sweep() -> None:
    global _sweeper
    with _lock:
        _sweeper = None
        _drop_expired(time.monotonic())
        _sweep_later()


def forget(scan_id) -> None:
    with _lock:
        for key in [key for key in _kept if key[0] == scan_id]:
            del _kept[key]


def forget_all() -> None:
    global _sweeper
    with _lock:
        _kept.clear()
        if _sweeper is not None:
            _sweeper.cancel()
            _sweeper = None
