"""Readers for everything a scan can arrive as, and for the two training-set layouts.

Uploads: ``decode_scan(data, max_pixels=..., max_frames=...)`` takes the raw bytes (or a path), sniffs
the type from the content, never from a file name, and returns a ``DecodedScan`` with 2-D grayscale
slices. Every failure is a ``ScanDecodeError(code, detail)``; ``code`` is one of ``ERROR_CODES`` and is
meant for an API response, ``detail`` is a sentence for a person.

Supported: JPEG, PNG, DICOM (a single file, possibly multi-frame, or a zip of a DICOM series; the
modality must be MR), NIfTI-1/NIfTI-2 (optionally gzip-compressed; axial slices that contain a head are
kept). Patient identifiers found in DICOM headers are returned apart from the pixels, so that the caller
can store them encrypted and nothing identifying ever reaches the model.

Training sets: ``list_kaggle_images(root)`` for the class-per-folder layout and
``list_figshare_slices(root)`` for the images/masks/labels.csv layout.
"""
from __future__ import annotations

import csv
import gzip
import io
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from diagnostics.limits import too_many_pixels_sentence

CLASS_NAMES = ("glioma", "meningioma", "notumor", "pituitary")

ERROR_CODES = {
    "unreadable": "The file could not be decoded.",
    "unsupported_type": "Only JPEG, PNG, DICOM (single file or zipped series) and NIfTI are accepted.",
    "too_many_pixels": "An image is larger than the accepted number of pixels.",
    "too_many_frames": "The scan has more frames or slices than accepted.",
    "too_large": "The file expands to more data than accepted.",
    "unsupported_compression": "The DICOM file uses a compression this server cannot decode.",
    "not_mr": "The scan is not an MR acquisition.",
    "mixed_sizes": "The images of the series differ in size.",
    "no_brain_slices": "No slice of the scan contains an image of a head.",
    "not_brain_mri": "The picture does not look like a brain MRI.",
    "empty": "The file is empty.",
    "extreme_shape": "An image is far longer one way than the other, which an MRI slice never is.",
}

# A gzip or zip bomb must be stopped while it inflates, not after.
DEFAULT_MAX_DECOMPRESSED_BYTES = 512 * 1024 * 1024


class ScanDecodeError(ValueError):
    """A scan that cannot be used; ``code`` is machine-readable, ``detail`` is for a person."""

    def __init__(self, code: str, detail: str | None = None):
        if code not in ERROR_CODES:
            raise ValueError(f"unknown scan error code {code!r}")
        self.code = code
        self.detail = detail or ERROR_CODES[code]
        super().__init__(f"{code}: {self.detail}")

    def __reduce__(self):  # picklable with both fields, so it survives a process pool
        return (type(self), (self.code, self.detail))


@dataclass
class DecodedScan:
    kind: str  # "jpeg" | "png" | "dicom" | "dicom_series" | "nifti"
    slices: list[np.ndarray]  # 2-D grayscale, uint8 or float32
    pixel_spacing_mm: tuple[float, float] | None = None  # (row, column) spacing
    patient_identifiers: dict[str, str] = field(default_factory=dict)
    # Where each slice lies in the file, when that is not simply its position here: a NIfTI volume's blank
    # slices are left out, and its axial axis may be stored head to foot. Index along the stored axis.
    slice_numbers: list[int] | None = None
    slices_in_file: int | None = None

    def slice_number(self, position: int) -> int:
        """The file's own index of slices[position] (0-based), as a viewer of the file numbers it."""
        return self.slice_numbers[position] if self.slice_numbers is not None else position


def sniff_type(data: bytes) -> str:
    """Name the container of ``data`` from its leading bytes: jpeg, png, dicom, nifti, gzip, zip."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    if len(data) >= 4:
        for order in "<>":
            if struct.unpack(order + "i", data[:4])[0] in (348, 540):
                return "nifti"
    if data[:2] == b"\x1f\x8b":
        return "gzip"
    if data[:4] == b"PK\x03\x04":
        return "zip"
    return "unknown"


# The longest an image may be next to its width (either way). An MRI slice is about square; a strip of
# slices side by side is not one image, and preprocessing squares the head's box, so a 512 × 32768 strip
# within the pixel limit took 14 GB to analyse.
MAX_ASPECT_RATIO = 4


def _check_pixels(height: int, width: int, max_pixels: int) -> None:
    if height * width > max_pixels:
        raise ScanDecodeError("too_many_pixels", too_many_pixels_sentence(width, height, max_pixels))
    if max(height, width) > MAX_ASPECT_RATIO * max(min(height, width), 1):
        raise ScanDecodeError("extreme_shape", f"The image is {width} × {height} pixels: far longer one way "
                                               "than the other, which an MRI slice never is.")


# A pixel is strongly coloured when its channels differ by more than this (of 255). Grayscale MRI
# exports, coloured annotations included, stayed under 4 % of such pixels on the whole training set.
CHROMA_LEVEL = 40
MAX_COLOURED_SHARE = 0.15


def colour_share(rgb: np.ndarray) -> float:
    """The share of pixels whose channels differ by more than CHROMA_LEVEL; 0 for a grayscale array."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        return 0.0
    channels = rgb[..., :3].astype(np.int16)
    return float(((channels.max(axis=2) - channels.min(axis=2)) > CHROMA_LEVEL).mean())


def has_content(slice2d: np.ndarray) -> bool:
    """True when a slice holds an image rather than a blank or near-uniform field."""
    values = np.asarray(slice2d, dtype=np.float32)
    low, high = np.percentile(values, [1, 99])
    if high - low <= 1e-6:
        return False
    foreground = values > low + 0.08 * (high - low)
    return foreground.mean() >= 0.02


def _decode_raster(data: bytes, kind: str, max_pixels: int, max_frames: int) -> DecodedScan:
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size  # from the header, before any pixel is decoded
        _check_pixels(height, width, max_pixels)
        if getattr(image, "n_frames", 1) > max_frames:
            raise ScanDecodeError("too_many_frames")
        image.load()
        # A camera or an export tool may store the picture turned and say so in EXIF; every viewer shows
        # it turned back, and so must the model and the doctor's view of the scan.
        image = _turned_as_exif_says(image)
    except ScanDecodeError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        # PIL's message names a Python object ("<_io.BytesIO object at 0x...>"); say it for people.
        raise ScanDecodeError("unreadable", f"The {kind.upper()} image is damaged or truncated.") from error
    if image.mode in ("I;16", "I;16B", "I", "F"):
        pixels = np.asarray(image, dtype=np.float32)
    else:
        if image.mode not in ("L", "LA", "1") and colour_share(np.asarray(image.convert("RGB"))) > MAX_COLOURED_SHARE:
            # MRI is grayscale: the classifier would still name a class for a photograph or a drawing.
            raise ScanDecodeError("not_brain_mri", "The picture is in colour, and MRI images are grayscale. "
                                                   "Upload the MRI image itself.")
        pixels = np.asarray(image.convert("L"), dtype=np.uint8)
    return DecodedScan(kind=kind, slices=[pixels])


def _dicom_identifiers(dataset) -> dict[str, str]:
    identifiers = {}
    for keyword, name in (("PatientName", "patient_name"), ("PatientID", "patient_id"),
                          ("PatientBirthDate", "birth_date")):
        value = dataset.get(keyword)
        if value not in (None, ""):
            identifiers[name] = str(value)
    return identifiers


def _inflate(compressed: bytes, max_bytes: int, what: str) -> bytes:
    """Inflate a raw deflate stream, stopping as soon as it passes ``max_bytes``."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(compressed, max_bytes + 1)
    except zlib.error as error:
        raise ScanDecodeError("unreadable", f"The {what} is damaged.") from error
    if len(inflated) > max_bytes:
        raise ScanDecodeError("too_large", f"The {what} expands to more data than accepted.")
    return inflated


def _dcmread(data: bytes, max_bytes: int):
    import pydicom
    from pydicom.filereader import _read_file_meta_info, read_dataset, read_preamble
    from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

    stream = io.BytesIO(data)
    preamble = read_preamble(stream, False)
    meta = _read_file_meta_info(stream)
    if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        return pydicom.dcmread(io.BytesIO(data))
    # pydicom inflates a deflated dataset whole, with no bound: a few hundred kB can grow to gigabytes.
    # Inflate it here within the limit and read the plain dataset that results.
    body = _inflate(data[stream.tell():], max_bytes, "deflated DICOM file")
    dataset = read_dataset(io.BytesIO(body), is_implicit_VR=False, is_little_endian=True)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return pydicom.dataset.FileDataset(None, dataset, preamble=preamble, file_meta=meta,
                                      is_implicit_VR=False, is_little_endian=True)


def _rle_segment_length(segment: bytes, limit: int) -> int:
    """How many bytes an RLE segment decodes to, counted without decoding (stops past ``limit``)."""
    length, position, end = 0, 0, len(segment)
    while position < end and length <= limit:
        header = segment[position]
        if header > 128:  # the next byte repeated 257 - header times
            length += 257 - header
            position += 2
        elif header < 128:  # header + 1 literal bytes
            length += header + 1
            position += header + 2
        else:
            position += 1
    return length


def _check_rle_expansion(dataset, rows: int, columns: int, frames: int) -> None:
    # pydicom decodes each RLE segment whole before checking its length, and a segment expands up to
    # 64-fold: refuse a segment that would decode to more than its plane (twice, for the padding
    # some encoders add) before pydicom allocates it.
    from pydicom.encaps import generate_frames

    limit = 2 * rows * columns
    for frame in generate_frames(dataset.PixelData, number_of_frames=frames):
        count = struct.unpack("<L", frame[:4])[0] if len(frame) >= 64 else 0
        offsets = [*struct.unpack(f"<{min(count, 15)}L", frame[4:4 + 4 * min(count, 15)]), len(frame)]
        for start, stop in zip(offsets, offsets[1:]):
            if _rle_segment_length(frame[start:stop], limit) > limit:
                raise ScanDecodeError("too_large", "The DICOM pixel data expands to more than its image size.")


def _check_compressed_image_sizes(dataset, rows: int, columns: int, frames: int) -> None:
    # Pillow decodes a JPEG or JPEG 2000 frame at the size its own codestream gives, whatever Rows and
    # Columns say, so the pixel limit checked on them would not hold: a 224 × 224 header over a
    # 13000 × 13000 codestream took gigabytes. Opening a codestream reads its header only.
    from itertools import islice

    from PIL import Image
    from pydicom.encaps import generate_frames

    for frame in islice(generate_frames(dataset.PixelData, number_of_frames=frames), frames):
        try:
            with Image.open(io.BytesIO(frame)) as image:
                width, height = image.size
        except Exception as error:  # Pillow raises many types for a damaged codestream, a bomb among them
            raise ScanDecodeError("unreadable", "The DICOM pixel data is damaged.") from error
        if (width, height) != (columns, rows):
            raise ScanDecodeError(
                "unreadable",
                f"The DICOM file is damaged: its header says the image is {columns} × {rows} pixels, but its "
                f"compressed image data is {width} × {height}.")


def _decoded_size(dataset, frames: int) -> int:
    """What the decoder allocates for the pixel data, in bytes, from the header."""
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    bytes_per_sample = (int(dataset.get("BitsAllocated", 8) or 8) + 7) // 8
    return int(dataset.Rows) * int(dataset.Columns) * frames * samples * bytes_per_sample


def _read_dicom_pixels(dataset, frames: int, max_bytes: int) -> np.ndarray:
    """The pixel data as (frames, rows, columns[, samples]), exactly as the header describes it."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEG2000, JPEG2000Lossless, JPEGBaseline8Bit, JPEGExtended12Bit, RLELossless

    rows, columns = int(dataset.Rows), int(dataset.Columns)
    # Compressed pixel data must not expand past what the header says.
    if _decoded_size(dataset, frames) > max_bytes:
        raise ScanDecodeError("too_large", "The DICOM image data is larger than accepted.")
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    if syntax is not None and syntax.is_compressed:
        try:
            decoder = get_decoder(syntax)
            available = decoder.is_available
        except NotImplementedError:
            available = False
        bits = int(dataset.get("BitsStored", 8) or 8)
        if available and syntax == JPEGExtended12Bit and bits > 8 and set(decoder.available_plugins) <= {"pillow"}:
            # Pillow decodes 8-bit JPEG only; a 12-bit one would fail inside it as "damaged".
            raise ScanDecodeError(
                "unsupported_compression",
                f"This DICOM file is compressed as {syntax.name} with {bits}-bit samples, which cannot be "
                "decoded here; export the series uncompressed (or as JPEG baseline) and upload it again.",
            )
        if not available:
            raise ScanDecodeError(
                "unsupported_compression",
                f"This DICOM file is compressed as {syntax.name}, which cannot be decoded here; "
                "export the series uncompressed (or as JPEG baseline) and upload it again.",
            )
        if syntax == RLELossless:
            _check_rle_expansion(dataset, rows, columns, frames)
        elif syntax in (JPEGBaseline8Bit, JPEGExtended12Bit, JPEG2000Lossless, JPEG2000):
            _check_compressed_image_sizes(dataset, rows, columns, frames)
    try:
        # Only the frames the header counts: pydicom otherwise returns every frame the data holds, past
        # the frame limit checked on NumberOfFrames.
        dataset.pixel_array_options(allow_excess_frames=False)
        pixels = dataset.pixel_array.astype(np.float32)
    except Exception as error:  # pydicom raises many types for bad pixel data; its text is not for people
        raise ScanDecodeError("unreadable", "The DICOM pixel data is damaged.") from error
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    expected = (rows, columns) + ((samples,) if samples > 1 else ())
    if pixels.shape == expected:
        pixels = pixels[None]
    if pixels.shape != (frames, *expected):
        shape = " × ".join(str(n) for n in pixels.shape)
        raise ScanDecodeError("unreadable", f"The DICOM file is damaged: its pixel data decodes to {shape} values, "
                                            f"not the {frames} frame(s) of {columns} × {rows} pixels its header "
                                            "describes.")
    return pixels


@dataclass
class _DicomImage:
    frames: list[np.ndarray]
    spacing_mm: tuple[float, float] | None
    identifiers: dict[str, str]
    position: float  # along the series: ImagePositionPatient along the slice normal, else InstanceNumber
    decoded_bytes: int  # what its pixel data took decoded (_decoded_size), against a series' limit


# What a patient calls the common other kinds of scan (DICOM's Modality codes).
MODALITY_WORDS = {"CT": "a CT scan", "CR": "an X-ray", "DX": "an X-ray", "XA": "an X-ray", "RF": "an X-ray",
                  "MG": "a mammogram", "US": "an ultrasound scan", "PT": "a PET scan", "NM": "a nuclear medicine scan"}


def not_mr_sentence(modality: str) -> str:
    """Why a DICOM file that is no MRI is refused, in words a patient knows (the code in brackets for staff)."""
    if not modality:
        return ("This file does not say what kind of scan it is (its DICOM modality is empty), and only MRI "
                "scans can be read. Upload the MRI scan the hospital gave you.")
    what = MODALITY_WORDS.get(modality, "not an MRI scan")
    return f"This file is {what} (DICOM modality {modality}), and only MRI scans can be read. Upload the MRI scan instead."


def _read_dicom(data: bytes, max_pixels: int, max_frames: int, max_bytes: int) -> _DicomImage:
    """One DICOM file, every header field it needs read here, where damage becomes "unreadable"."""
    try:
        return _read_dicom_unguarded(data, max_pixels, max_frames, max_bytes)
    except ScanDecodeError:
        raise
    except Exception as error:
        # pydicom converts a header field when it is first read, and a damaged one raises whatever its
        # converter raises (NotImplementedError for an unknown VR, BytesLengthException, ...).
        raise ScanDecodeError("unreadable", "The DICOM file is damaged: a header field cannot be read.") from error


def _read_dicom_unguarded(data: bytes, max_pixels: int, max_frames: int, max_bytes: int) -> _DicomImage:
    from pydicom.errors import InvalidDicomError

    try:
        dataset = _dcmread(data, max_bytes)
    except ScanDecodeError:
        raise
    except (InvalidDicomError, EOFError, ValueError, TypeError, OSError, KeyError) as error:
        raise ScanDecodeError("unreadable", "The DICOM file is damaged or truncated.") from error
    # pydicom reads a truncated file up to where it ends; without pixel data there is nothing to judge.
    if "PixelData" not in dataset:
        raise ScanDecodeError("unreadable", "The DICOM file holds no image data (is it truncated?).")
    modality = str(dataset.get("Modality", "")).strip().upper()
    if modality != "MR":
        raise ScanDecodeError("not_mr", not_mr_sentence(modality))
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    if rows <= 0 or columns <= 0:
        raise ScanDecodeError("unreadable", "The DICOM file has no image.")
    _check_pixels(rows, columns, max_pixels)
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames > max_frames:
        raise ScanDecodeError("too_many_frames", f"The DICOM file has {frames} frames; the limit is {max_frames}.")
    pixels = _read_dicom_pixels(dataset, frames, max_bytes)
    slope = float(dataset.get("RescaleSlope", 1) or 1)
    intercept = float(dataset.get("RescaleIntercept", 0) or 0)
    pixels = pixels * slope + intercept
    if str(dataset.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        pixels = pixels.max() - pixels
    if pixels.ndim == 4:  # colour frames (SamplesPerPixel above 1): reduce to grayscale
        pixels = pixels.mean(axis=-1)
    spacing = dicom_pixel_measure(dataset, "PixelSpacing")
    spacing_mm = _positive_spacing(spacing)
    return _DicomImage([frame for frame in pixels], spacing_mm, _dicom_identifiers(dataset),
                       dicom_position_along_normal(dataset), _decoded_size(dataset, frames))


def dicom_pixel_measure(dataset, keyword: str):
    """PixelSpacing, SliceThickness or SpacingBetweenSlices of a DICOM image, wherever its IOD keeps it.

    A classic image has it at the top level; an enhanced (multi-frame) MR image in the Pixel Measures
    functional group, shared by all frames or given per frame (the first frame's is taken). None when
    the file does not say.
    """
    value = dataset.get(keyword)
    if value not in (None, ""):
        return value
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for group in (dataset.get(groups) or [])[:1]:
            for measures in (group.get("PixelMeasuresSequence") or [])[:1]:
                value = measures.get(keyword)
                if value not in (None, ""):
                    return value
    return None


# A pixel or slice step outside this range (mm) measures no human head: a header that says 1e200 (or a
# unit mixed up) gives no mm figure at all, rather than an area or volume of infinity that no page or
# JSON body can show.
PLAUSIBLE_STEP_MM = (1e-3, 50.0)


def plausible_step_mm(value) -> bool:
    return bool(np.isfinite(value) and PLAUSIBLE_STEP_MM[0] <= value <= PLAUSIBLE_STEP_MM[1])


def _positive_spacing(spacing) -> tuple[float, float] | None:
    try:
        row, column = (float(value) for value in spacing)
    except (TypeError, ValueError):  # absent, or not two numbers
        return None
    return (row, column) if plausible_step_mm(row) and plausible_step_mm(column) else None


def _numbers(values, count: int) -> np.ndarray | None:
    """A header's multi-valued field as `count` finite floats; None when it is missing or malformed."""
    try:
        numbers = np.asarray([float(v) for v in values], dtype=np.float64) if values is not None else None
    except (TypeError, ValueError):
        return None
    return numbers if numbers is not None and numbers.shape == (count,) and np.all(np.isfinite(numbers)) else None


def dicom_position_along_normal(dataset) -> float:
    """Where a DICOM slice lies in its series: ImagePositionPatient along the slice normal, in mm.

    The normal is the cross product of ImageOrientationPatient's row and column directions, so a
    sagittal or coronal series (all at one z) is ordered as well as an axial one. It is made unit length
    and turned so that its largest component is positive: an axial series then runs by increasing z
    whichever way its rows point, as series always were here. Without a usable orientation the z
    coordinate is used, and without a position the InstanceNumber; a malformed field counts as missing.
    """
    position = _numbers(dataset.get("ImagePositionPatient"), 3)
    if position is None:
        try:
            return float(dataset.get("InstanceNumber", 0) or 0)
        except (TypeError, ValueError):
            return 0.0
    orientation = _numbers(dataset.get("ImageOrientationPatient"), 6)
    if orientation is None:
        return float(position[2])
    normal = np.cross(orientation[:3], orientation[3:])
    length = float(np.linalg.norm(normal))
    if not np.isfinite(length) or length < 1e-6:
        return float(position[2])
    normal = normal / length
    if normal[np.argmax(np.abs(normal))] < 0:
        normal = -normal
    return float(position @ normal)


def _turned_as_exif_says(image):
    """A camera or an export tool may store the picture turned and say so in EXIF; every viewer shows it
    turned back, and so must the model and the doctor's view of the scan. EXIF that cannot be read
    leaves the picture as stored, as it did before EXIF was read at all: the pixels are sound."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - PIL raises SyntaxError, ValueError, struct.error... on bad EXIF
        return image


def _decode_dicom(data: bytes, max_pixels: int, max_frames: int, max_bytes: int) -> DecodedScan:
    image = _read_dicom(data, max_pixels, max_frames, max_bytes)
    return DecodedScan("dicom", image.frames, image.spacing_mm, image.identifiers)


def _decode_dicom_zip(data: bytes, max_pixels: int, max_frames: int, max_bytes: int) -> DecodedScan:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX")]
    except (zipfile.BadZipFile, OSError) as error:
        raise ScanDecodeError("unreadable", "The zip archive is damaged.") from error
    if not members:
        raise ScanDecodeError("empty", "The zip archive holds no files.")
    if len(members) > max_frames:
        raise ScanDecodeError("too_many_frames", f"The series has {len(members)} files; the limit is {max_frames}.")
    if sum(m.file_size for m in members) > max_bytes:
        raise ScanDecodeError("too_large", "The zip archive expands to more data than accepted.")
    entries = []
    identifiers: dict[str, str] = {}
    spacing = None
    # The limits hold for the series as a whole, and are spent as members decode: a zip of many members
    # each within them would otherwise be decoded in full (gigabytes) before its total was refused.
    bytes_left = max_bytes
    for member in members:
        try:
            with archive.open(member) as handle:
                content = handle.read(max_bytes + 1)
        # zlib.error: a damaged deflate stream behind an intact member header.
        except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, zlib.error) as error:
            raise ScanDecodeError("unreadable", "A file in the zip archive is damaged.") from error
        if sniff_type(content) != "dicom":
            raise ScanDecodeError("unsupported_type", "A zip upload must contain only DICOM files of one series.")
        frames_left = max_frames - len(entries)
        if frames_left < 1:
            raise _too_many_series_frames(max_frames)
        if bytes_left < 1:
            raise ScanDecodeError("too_large", "The series' images hold more data than accepted.")
        try:
            image = _read_dicom(content, max_pixels, frames_left, bytes_left)
        except ScanDecodeError as refusal:
            if refusal.code == "too_many_frames":
                raise _too_many_series_frames(max_frames) from refusal
            raise
        bytes_left -= image.decoded_bytes
        identifiers = identifiers or image.identifiers
        spacing = spacing or image.spacing_mm
        entries.extend((image.position, index, frame) for index, frame in enumerate(image.frames))
    if len(entries) > max_frames:
        raise ScanDecodeError("too_many_frames", f"The series has {len(entries)} frames; the limit is {max_frames}.")
    if len({frame.shape for _, _, frame in entries}) > 1:
        # One scan has one image size: the stored width and height, the slice shown and the slice
        # analysed must all agree.
        raise ScanDecodeError("mixed_sizes", "The images in the zip archive are not all the same size; "
                                             "upload one series at a time.")
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    return DecodedScan("dicom_series", [frame for _, _, frame in entries], spacing, identifiers)


def _too_many_series_frames(max_frames: int) -> ScanDecodeError:
    return ScanDecodeError("too_many_frames", f"The series has more than {max_frames} frames; the limit is "
                                              f"{max_frames}.")


def _check_nifti_holds_its_voxels(header, size: int) -> None:
    # nibabel allocates the array its header declares before it finds the file short of it: a 384-byte
    # upload declaring 4096 × 4096 × 64 voxels took 2 GB. Only the first volume of a time series is read.
    # `header` as written (nifti_header): a loaded image's own header no longer gives the file's data offset.
    voxels = int(np.prod(header.get_data_shape()[:3], dtype=np.int64))
    needed = int(header.get_data_offset()) + voxels * header.get_data_dtype().itemsize
    if needed > size:
        raise ScanDecodeError("unreadable", f"The NIfTI file is truncated: its header describes {needed:,} bytes "
                                            f"of image data and header, and the file holds {size:,}.")


def _canonical_extent(stored: tuple[int, ...], orientation) -> tuple[int, int, int]:
    """(rows, columns, slices) of the first volume of an image of shape `stored` once reoriented to RAS
    (`orientation`: nib.io_orientation of its affine); a 2-D image is one slice deep, as it is read."""
    if len(stored) == 2:
        return stored[0], stored[1], 1
    extent = [0, 0, 0]
    for axis, (output, _) in enumerate(orientation[:3]):
        extent[int(output)] = int(stored[axis])
    return extent[0], extent[1], extent[2]


def _decode_nifti(data: bytes, max_pixels: int, max_frames: int) -> DecodedScan:
    import nibabel as nib

    header_size = struct.unpack("<i", data[:4])[0]
    if header_size not in (348, 540):
        header_size = struct.unpack(">i", data[:4])[0]
    image_class = nib.Nifti2Image if header_size == 540 else nib.Nifti1Image
    try:
        raw_header = nifti_header(data)
        volume = image_class.from_bytes(data)
        stored = volume.shape
        if not 2 <= len(stored) <= 4:
            raise ScanDecodeError("unreadable", f"A NIfTI image of shape {stored} is not a 2-D or 3-D scan.")
        # Limits from the header, in the axes the slices are shown in, before a voxel is read: reorienting
        # reads the whole array, and nibabel allocates what the header declares before finding it missing.
        orientation = nib.io_orientation(volume.affine)  # stored axis -> RAS axis, as reorienting uses
        rows, columns, depth = _canonical_extent(stored, orientation)
        _check_pixels(rows, columns, max_pixels)
        if depth > max_frames:
            raise ScanDecodeError("too_many_frames", f"The volume has {depth} slices; the limit is {max_frames}.")
        _check_nifti_holds_its_voxels(raw_header, len(data))
        if len(stored) == 2:
            # nibabel reorients 3-D and 4-D images only: a single slice is a volume one slice deep.
            volume = image_class(np.asanyarray(volume.dataobj)[..., None], volume.affine, volume.header)
        elif len(stored) == 4:
            volume = volume.slicer[..., 0]  # a time series: the first volume is the anatomy, and only it is read
        volume = nib.as_closest_canonical(volume)  # RAS: the third axis runs foot to head (axial)
        array = np.asarray(volume.dataobj, dtype=np.float32)
    except ScanDecodeError:
        raise
    except Exception as error:  # nibabel raises assorted types on a bad header or short data
        raise ScanDecodeError("unreadable", "The NIfTI file is damaged or truncated.") from error
    if not np.isfinite(array).all():
        # Masked and registered volumes mark "no data" outside the brain with NaN: that is background,
        # as dark as the darkest voxel measured.
        finite = array[np.isfinite(array)]
        array = np.where(np.isfinite(array), array, finite.min() if finite.size else 0.0).astype(np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    # RAS voxel (i, j) runs left->right, posterior->anterior; rotate so anterior is up, as radiologists
    # (and the training images) show an axial slice.
    slices = [np.rot90(array[:, :, k]).astype(np.float32) for k in range(array.shape[2])]
    kept = [k for k, s in enumerate(slices) if has_content(s)]
    slices = [slices[k] for k in kept]
    # Whether the stored axis that became the canonical axial one ran head to foot.
    flipped = any(int(axis) == 2 and direction < 0 for axis, direction in orientation)
    count = array.shape[2]
    numbers = [count - 1 - k if flipped else k for k in kept]
    sizes = nifti_voxel_sizes_mm(raw_header)
    spacing = None
    if sizes is not None:
        # Rows of a shown slice run along the canonical second axis (y), columns along the first (x).
        canonical = {int(output): float(size) for (output, _), size in zip(orientation, sizes)}
        spacing = (canonical[1], canonical[0]) if {0, 1} <= canonical.keys() else None
        spacing = spacing if spacing and all(plausible_step_mm(step) for step in spacing) else None
    return DecodedScan("nifti", slices, spacing, {}, slice_numbers=numbers, slices_in_file=count)


# NIfTI's xyzt_units name the unit of the voxel sizes and of the affines; "unknown" is read as mm, as
# the format's tools do.
# The spatial unit codes of NIfTI's xyzt_units (its low three bits): unknown, metre, mm, micron. Any other
# code gives no spacing. Read from the field itself: nibabel's get_xyzt_units raises on a code it does not
# know, spatial or temporal, which would refuse a volume that decodes well.
NIFTI_MM_PER_UNIT_CODE = {0: 1.0, 1: 1000.0, 2: 1.0, 3: 0.001}


def nifti_header(data: bytes):
    """The header of a NIfTI-1 or NIfTI-2 file as written: nibabel's checks would turn a voxel size of
    0 (not given) into 1 mm, a measurement nobody made."""
    import nibabel as nib

    header_class = nib.Nifti2Header if 540 in (struct.unpack("<i", data[:4])[0], struct.unpack(">i", data[:4])[0]) \
        else nib.Nifti1Header
    return header_class.from_fileobj(io.BytesIO(data[:540]), check=False)


def nifti_voxel_sizes_mm(header) -> tuple[float, ...] | None:
    """Voxel size in mm along each spatial axis of the stored array; None when the header gives none.

    From the sform when there is one (its columns' lengths), else from pixdim (which the qform and the
    plain scaling use), in the header's unit. ``header`` as read by ``nifti_header``.
    """
    spatial = min(3, max(int(header["dim"][0]), 1))
    if int(header["sform_code"]) > 0:
        sizes = np.sqrt((np.asarray(header.get_sform(), dtype=np.float64)[:3, :spatial] ** 2).sum(axis=0))
    else:
        sizes = np.abs(np.asarray(header["pixdim"][1:1 + spatial], dtype=np.float64))
    mm_per_unit = NIFTI_MM_PER_UNIT_CODE.get(int(header["xyzt_units"]) & 0x07)
    if mm_per_unit is None or not np.all(np.isfinite(sizes) & (sizes > 0)):
        return None
    return tuple(float(size) * mm_per_unit for size in sizes)


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            inflated = stream.read(max_bytes + 1)
    # zlib.error: a damaged deflate stream inside an intact gzip header.
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise ScanDecodeError("unreadable", "The gzip file is damaged or truncated.") from error
    if len(inflated) > max_bytes:
        raise ScanDecodeError("too_large", "The compressed file expands to more data than accepted.")
    return inflated


def decode_scan(data: bytes | str | Path, *, max_pixels: int = 4096 * 4096, max_frames: int = 512,
                max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES) -> DecodedScan:
    """Decode an uploaded scan (bytes, or a path to read) into grayscale slices, within limits.

    ``max_pixels`` bounds each slice (rows x columns), ``max_frames`` the number of frames, files or
    slices, ``max_decompressed_bytes`` what a gzip or zip may inflate to. Raises ``ScanDecodeError``.
    """
    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    if not data:
        raise ScanDecodeError("empty")
    kind = sniff_type(data)
    if kind == "gzip":
        data = _gunzip(data, max_decompressed_bytes)
        if sniff_type(data) != "nifti":
            raise ScanDecodeError("unsupported_type", "Only NIfTI volumes are accepted gzip-compressed.")
        kind = "nifti"
    if kind in ("jpeg", "png"):
        scan = _decode_raster(data, kind, max_pixels, max_frames)
    elif kind == "dicom":
        scan = _decode_dicom(data, max_pixels, max_frames, max_decompressed_bytes)
    elif kind == "zip":
        scan = _decode_dicom_zip(data, max_pixels, max_frames, max_decompressed_bytes)
    elif kind == "nifti":
        scan = _decode_nifti(data, max_pixels, max_frames)
    else:
        raise ScanDecodeError("unsupported_type")
    if not scan.slices or not any(has_content(s) for s in scan.slices):
        if kind in ("jpeg", "png"):  # one picture: speak of it, not of slices
            raise ScanDecodeError("no_brain_slices", "The image is blank or almost uniform: it shows no head.")
        raise ScanDecodeError("no_brain_slices")
    return scan


def read_grayscale(path: str | Path) -> np.ndarray:
    """First slice of any supported file, as a 2-D array (convenience for data sets and tests)."""
    return decode_scan(Path(path).read_bytes(), max_pixels=8192 * 8192, max_frames=4096).slices[0]


def read_mask(path: str | Path) -> np.ndarray:
    """A ground-truth mask image as bool (nonzero = tumour); no content checks, a mask may be tiny."""
    with Image.open(path) as image:
        return np.asarray(image.convert("L")) > 0


def list_kaggle_images(root: str | Path) -> list[tuple[Path, str]]:
    """(path, class name) for every image of a class-per-folder data set, sorted for determinism."""
    root = Path(root)
    items = []
    for class_name in CLASS_NAMES:
        folder = root / class_name
        if not folder.is_dir():
            raise FileNotFoundError(f"missing class folder {folder}")
        items.extend((path, class_name) for path in sorted(folder.iterdir())
                     if path.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return items


@dataclass(frozen=True)
class FigshareSlice:
    index: int
    image_path: Path
    mask_path: Path
    label: str


def list_figshare_slices(root: str | Path) -> list[FigshareSlice]:
    """Every slice of the Figshare images/masks/labels.csv layout, in slice-number order."""
    root = Path(root)
    slices = []
    with open(root / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            index = int(row["index"])
            slices.append(FigshareSlice(index, root / "images" / f"{index}.png",
                                        root / "masks" / f"{index}.png", row["label"]))
    return sorted(slices, key=lambda s: s.index)
