"""The slices of the scans last shown, as 8-bit images, kept in each web process.

A viewer browsing a volume asks for each slice by a request of its own, and every request decoded the
whole stored file to answer with one slice: about a second and 430 MB each for a 512-slice volume, so a
doctor scrolling through it kept the web process busy for minutes. The decoded slices of the last few
scans are kept, within a byte budget, by the scan and the digest of its stored file (a file stored anew is
decoded anew). Access is checked by the view before it asks, at every request.
"""

import threading
from collections import OrderedDict

import numpy as np

from diagnostics import services
from hospitals.storage import read_blob

# Enough for a few volumes at once (a 512 × 256 × 256 volume takes 32 MiB as 8-bit slices); a scan larger
# than this alone is decoded for each request, as before.
BUDGET_BYTES = 256 * 1024 * 1024

_lock = threading.Lock()
_kept: OrderedDict[tuple, list[np.ndarray]] = OrderedDict()


def shown_slices(scan) -> list[np.ndarray]:
    """Every slice of `scan` as shown (services.to_uint8), decoded from its stored file or kept from before."""
    key = (scan.id, scan.blob_sha256)
    with _lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    data = read_blob(scan.hospital, scan.blob_path, record_type=services.SCAN_BLOB, record_id=scan.id,
                     sha256=scan.blob_sha256)
    slices = [services.to_uint8(image) for image in services.decode_on_record(data).slices]
    size = sum(image.nbytes for image in slices)
    if size <= BUDGET_BYTES:
        with _lock:
            _kept[key] = slices
            while sum(image.nbytes for kept in _kept.values() for image in kept) > BUDGET_BYTES:
                _kept.popitem(last=False)
    return slices


def forget_all() -> None:
    with _lock:
        _kept.clear()
