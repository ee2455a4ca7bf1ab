"""Scan files for tests, built from a few real MRI slices read in place from NEUROFED_DATA_DIR.

Every format the upload accepts, and the bad inputs it must refuse. Files are built in memory; nothing
is written into the repository.
"""

import gzip
import io
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings
from PIL import Image

DICOM_PATIENT_NAME = "Testpatient^Ada"
DICOM_PATIENT_ID = "MRN-000123"


def data_dir() -> Path:
    return Path(settings.NEUROFED_DATA_DIR)


def kaggle_image(label: str = "glioma", index: int = 0) -> Path:
    return sorted((data_dir() / "brain-tumor-mri" / "Training" / label).iterdir())[index]


def jpeg_bytes(label: str = "glioma", index: int = 0) -> bytes:
    return kaggle_image(label, index).read_bytes()


@lru_cache
def slice_array(label: str = "glioma", index: int = 0) -> np.ndarray:
    return np.asarray(Image.open(kaggle_image(label, index)).convert("L"))


def array_png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def png_bytes(label: str = "meningioma", index: int = 0) -> bytes:
    return array_png(slice_array(label, index))


# Pictures that are no MRI, for the input gate (diagnostics/ml/gate.py) and the reader's colour check.

def checkerboard(side: int = 256, square: int = 16) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side]
    return (((xx // square) + (yy // square)) % 2 * 255).astype(np.uint8)


def colour_cartoon(side: int = 224) -> np.ndarray:
    """A yellow square on blue: a drawing, which MRI (grayscale) never is."""
    cartoon = np.zeros((side, side, 3), dtype=np.uint8)
    cartoon[...] = (40, 90, 220)
    cartoon[side * 3 // 10:side * 7 // 10, side * 3 // 10:side * 7 // 10] = (250, 220, 30)
    return cartoon


def figshare_case(index: int = 1) -> tuple[np.ndarray, np.ndarray, str]:
    root = data_dir() / "figshare-brain-tumor-seg"
    label = next(line.split(",")[1].strip() for line in (root / "labels.csv").read_text().splitlines()[1:]
                 if line.split(",")[0] == str(index))
    image = np.asarray(Image.open(root / "images" / f"{index}.png").convert("L"))
    mask = np.asarray(Image.open(root / "masks" / f"{index}.png").convert("L")) > 0
    return image, mask, label


def dicom_dataset(frames: list[np.ndarray], *, modality: str = "MR", instance: int = 1, z: float = 0.0,
                  patient_name: str = DICOM_PATIENT_NAME, patient_id: str = DICOM_PATIENT_ID):
    """A valid DICOM dataset (explicit VR little endian) holding one frame, or a multi-frame stack."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [0.0, 0.0, z]
    ds.PixelSpacing = [0.5, 0.5]
    ds.SliceThickness = 5.0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.Rows, ds.Columns = frames[0].shape
    # 12-bit values, as a scanner writes them, not the 8-bit JPEG range.
    pixels = np.stack([f.astype(np.uint16) * 16 for f in frames])
    if len(frames) > 1:
        ds.NumberOfFrames = len(frames)
        ds.PixelData = pixels.tobytes()
    else:
        ds.PixelData = pixels[0].tobytes()
    return ds


def dataset_bytes(ds) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dicom_bytes(label: str = "pituitary", index: int = 0, *, modality: str = "MR") -> bytes:
    return dataset_bytes(dicom_dataset([slice_array(label, index)], modality=modality))


def multiframedataset_bytes(label: str = "glioma", count: int = 3) -> bytes:
    return dataset_bytes(dicom_dataset([slice_array(label, i) for i in range(count)]))


def dicom_series_zip(label: str = "meningioma", count: int = 3) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(count):
            ds = dicom_dataset([slice_array(label, i)], instance=i + 1, z=5.0 * i)
            archive.writestr(f"series/IM{i:04d}.dcm", dataset_bytes(ds))
    return buffer.getvalue()


def nifti_bytes(label: str = "glioma", count: int = 3, *, compressed: bool = False) -> bytes:
    import nibabel as nib

    # Slices stacked along the third (axial) axis; the reader rotates RAS slices so anterior is up,
    # so store them rotated the other way to keep the pictures upright.
    volume = np.stack([np.rot90(slice_array(label, i), k=-1) for i in range(count)], axis=-1).astype(np.int16)
    image = nib.Nifti1Image(volume, affine=np.diag([0.9, 0.9, 4.0, 1.0]))
    data = image.to_bytes()
    return gzip.compress(data, compresslevel=1) if compressed else data


def one_voxel_nifti() -> bytes:
    import nibabel as nib

    return nib.Nifti1Image(np.ones((1, 1, 1), dtype=np.int16), affine=np.eye(4)).to_bytes()


def pdf_bytes() -> bytes:
    return (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] "
            b"/Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


def gzip_bomb(expanded_bytes: int) -> bytes:
    """A NIfTI-looking gzip stream that inflates to `expanded_bytes` (a few kB compressed)."""
    compressor = gzip.GzipFile(fileobj=(buffer := io.BytesIO()), mode="wb", compresslevel=9)
    header = np.zeros(348, dtype=np.uint8)
    header[:4] = np.frombuffer(np.int32(348).tobytes(), dtype=np.uint8)
    compressor.write(header.tobytes())
    chunk = b"\0" * (1 << 20)
    for _ in range(expanded_bytes // len(chunk) + 1):
        compressor.write(chunk)
    compressor.close()
    return buffer.getvalue()


def png_bomb(side: int = 30000) -> bytes:
    """A tiny PNG whose header declares side x side pixels (a decompression bomb for image decoders)."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    rows = zlib.compress(b"\0" * (side + 1) * 16, 9)  # just enough data to look plausible
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def damaged_deflate(data: bytes, offset: int) -> bytes:
    """`data` with the byte at `offset`, where a deflate stream starts, inverted: headers intact, stream not."""
    return data[:offset] + bytes([data[offset] ^ 0xFF]) + data[offset + 1:]


def gzip_with_damaged_stream() -> bytes:
    return damaged_deflate(nifti_bytes(compressed=True), 10)  # gzip.compress writes a 10-byte header


def zip_with_damaged_stream() -> bytes:
    import struct

    data = dicom_series_zip()
    name_length, extra_length = struct.unpack("<HH", data[26:30])  # the first member's local header
    return damaged_deflate(data, 30 + name_length + extra_length)


def dicom_with_damaged_field(keyword: str = "Modality", vr: bytes = b"ZZ") -> bytes:
    """A DICOM file whose `keyword` element carries another Value Representation than the one written."""
    from pydicom.datadict import tag_for_keyword

    data = dicom_bytes()
    tag = tag_for_keyword(keyword)
    at = data.index(struct_tag(tag)) + 4
    return data[:at] + vr + data[at + 2:]


def struct_tag(tag: int) -> bytes:
    import struct

    return struct.pack("<HH", tag >> 16, tag & 0xFFFF)


def deflated_dicom(side: int = 224) -> bytes:
    """An MR slice in the Deflated Explicit VR Little Endian transfer syntax, `side` x `side` pixels."""
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    image = np.zeros((side, side), dtype=np.uint8)
    image[: slice_array().shape[0], : slice_array().shape[1]] = slice_array()[:side, :side]
    ds = dicom_dataset([image])
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    return dataset_bytes(ds)


def rle_dicom_bomb(side: int = 64, runs: int = 100_000) -> bytes:
    """An 8-bit MR DICOM declaring `side` x `side` pixels whose RLE segment expands 64-fold to 128 x `runs` bytes."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import RLELossless

    ds = dicom_dataset([np.zeros((side, side), dtype=np.uint8)])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    segment = b"\x81\x00" * runs  # each pair: the byte 0 repeated 128 times
    header = (1).to_bytes(4, "little") + (64).to_bytes(4, "little") + bytes(56)
    ds.PixelData = encapsulate([header + segment])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = RLELossless
    return dataset_bytes(ds)


def compressed_dicom(frames: list[np.ndarray], codec: str = "JPEG", *, rows: int | None = None,
                     columns: int | None = None) -> bytes:
    """An 8-bit MR DICOM whose frames are compressed by Pillow as `codec` ("JPEG" or "JPEG2000"), with the
    header's Rows and Columns those of the frames unless given."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit

    codestreams = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame.astype(np.uint8)).save(buffer, codec, **({"quality": 95} if codec == "JPEG" else {}))
        codestreams.append(buffer.getvalue())
    ds = dicom_dataset([np.zeros((rows or frames[0].shape[0], columns or frames[0].shape[1]), dtype=np.uint8)])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    if len(frames) > 1:
        ds.NumberOfFrames = len(frames)
    ds.PixelData = encapsulate(codestreams)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit if codec == "JPEG" else JPEG2000Lossless
    return dataset_bytes(ds)


def dicom_with_frames_beyond_its_header(declared: int | None, held: int) -> bytes:
    """An MR DICOM whose pixel data holds `held` frames and whose NumberOfFrames says `declared` (None: absent)."""
    ds = dicom_dataset([slice_array("glioma", i) for i in range(held)])
    if declared is None:
        del ds.NumberOfFrames
    else:
        ds.NumberOfFrames = declared
    return dataset_bytes(ds)


def dicom_needing_a_missing_codec() -> bytes:
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLSLossless

    ds = dicom_dataset([slice_array()])
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xf7" + bytes(64)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless
    return dataset_bytes(ds)


def dicom_series_of_mixed_sizes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, side in enumerate((224, 160)):
            ds = dicom_dataset([slice_array("glioma", i)[:side, :side]], instance=i + 1, z=5.0 * i)
            archive.writestr(f"series/IM{i:04d}.dcm", dataset_bytes(ds))
    return buffer.getvalue()


def png_with_garbage_body() -> bytes:
    """A PNG signature followed by bytes that are no PNG chunks at all."""
    return b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


GOOD_FORMATS = {
    "jpeg": (lambda: jpeg_bytes("glioma", 0), "scan.jpg", "jpeg"),
    "png": (lambda: png_bytes("meningioma", 0), "scan.png", "png"),
    "dicom": (lambda: dicom_bytes("pituitary", 0), "scan.dcm", "dicom"),
    "dicom_multiframe": (lambda: multiframedataset_bytes("glioma", 3), "multi.dcm", "dicom"),
    "dicom_zip": (lambda: dicom_series_zip("meningioma", 3), "series.zip", "dicom_series"),
    "nifti": (lambda: nifti_bytes("glioma", 3), "volume.nii", "nifti"),
    "nifti_gz": (lambda: nifti_bytes("notumor", 3, compressed=True), "volume.nii.gz", "nifti"),
    "dicom_deflated": (deflated_dicom, "deflated.dcm", "dicom"),
}


def truncated(data: bytes) -> bytes:
    return data[: max(len(data) // 3, 200)]


# name -> (bytes factory, file name, expected error code)
BAD_INPUTS = {
    "jpeg_truncated": (lambda: truncated(jpeg_bytes()), "scan.jpg", "unreadable"),
    "png_truncated": (lambda: truncated(png_bytes()), "scan.png", "unreadable"),
    "dicom_truncated": (lambda: truncated(dicom_bytes()), "scan.dcm", "unreadable"),
    "dicom_zip_truncated": (lambda: truncated(dicom_series_zip()), "series.zip", "unreadable"),
    "nifti_truncated": (lambda: truncated(nifti_bytes()), "volume.nii", "unreadable"),
    "nifti_gz_truncated": (lambda: truncated(nifti_bytes(compressed=True)), "volume.nii.gz", "unreadable"),
    "pdf_renamed_png": (pdf_bytes, "scan.png", "unsupported_type"),
    "zero_bytes": (lambda: b"", "scan.png", "empty"),
    "gzip_bomb": (lambda: gzip_bomb(200 * 1024 * 1024), "volume.nii.gz", "too_large"),
    "png_bomb": (png_bomb, "scan.png", "too_many_pixels"),
    "ct_dicom": (lambda: dicom_bytes(modality="CT"), "scan.dcm", "not_mr"),
    "one_voxel_nifti": (one_voxel_nifti, "volume.nii", "no_brain_slices"),
    "path_in_filename": (lambda: jpeg_bytes(), "../../etc/scan.jpg", "invalid_filename"),
    "gzip_damaged_stream": (gzip_with_damaged_stream, "volume.nii.gz", "unreadable"),
    "zip_damaged_stream": (zip_with_damaged_stream, "series.zip", "unreadable"),
    "dicom_unknown_vr": (dicom_with_damaged_field, "scan.dcm", "unreadable"),
    "dicom_field_of_wrong_length": (lambda: dicom_with_damaged_field("Columns", b"UL"), "scan.dcm", "unreadable"),
    "dicom_rle_bomb": (rle_dicom_bomb, "scan.dcm", "too_large"),
    "dicom_missing_codec": (dicom_needing_a_missing_codec, "scan.dcm", "unsupported_compression"),
    "dicom_zip_mixed_sizes": (dicom_series_of_mixed_sizes, "series.zip", "mixed_sizes"),
    "png_garbage_body": (png_with_garbage_body, "scan.png", "unreadable"),
    "png_strip_of_slices": (lambda: array_png(np.tile(slice_array("glioma"), (1, 5))), "scan.png", "extreme_shape"),
}
