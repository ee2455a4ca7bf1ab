"""What the readers take from a file's header to measure with, and the pictures they hand the models.

Each case is a real file built with pydicom, nibabel or Pillow from a real slice: the tumour area in mm²
and the volume estimate rest on these numbers, and a guessed or misread one is shown to doctors as a
measurement.
"""
import gzip
import io
import struct
import zipfile

import numpy as np
import pytest
from PIL import Image, ImageOps

from diagnostics import analysis
from diagnostics.ml.readers import ScanDecodeError, decode_scan

from .helpers import kaggle_slice, requires_data

pytestmark = requires_data
LIMITS = dict(max_pixels=1024 * 1024, max_frames=64)


def _upright_volume(count: int = 3) -> np.ndarray:
    # The reader shows RAS slices with anterior up (rot90); store them turned the other way.
    return np.stack([np.rot90(kaggle_slice("glioma", i), k=-1) for i in range(count)], axis=-1)


def _nifti(volume: np.ndarray, affine, *, units: str = "mm") -> bytes:
    import nibabel as nib

    image = nib.Nifti1Image(volume, affine)
    image.header.set_xyzt_units(xyz=units)
    return image.to_bytes()


# --- NIfTI ------------------------------------------------------------------------------------------


def test_nifti_with_nan_outside_the_head_is_read_and_its_slices_are_finite():
    # Masked and registered volumes (FSL, SPM, ANTs) often carry NaN outside the brain.
    volume = _upright_volume().astype(np.float32)
    volume[volume < 12] = np.nan
    volume[0, 0, :] = np.inf
    scan = decode_scan(_nifti(volume, np.diag([0.9, 0.9, 4.0, 1.0])), **LIMITS)
    assert len(scan.slices) == 3
    assert all(np.isfinite(s).all() for s in scan.slices)
    # NaN is background: no brighter than the darkest real voxel.
    finite = volume[np.isfinite(volume)]
    assert scan.slices[0].min() >= finite.min()


@pytest.mark.parametrize(("units", "scale"), [("mm", 1.0), ("micron", 1000.0), ("meter", 0.001)])
def test_nifti_spacing_is_converted_from_the_headers_unit_to_mm(units, scale):
    affine = np.diag([0.9 * scale, 0.7 * scale, 4.0 * scale, 1.0])
    data = _nifti(_upright_volume().astype(np.int16), affine, units=units)
    scan = decode_scan(data, **LIMITS)
    assert scan.pixel_spacing_mm == pytest.approx((0.7, 0.9), rel=1e-5)  # (rows: y, columns: x)
    assert analysis._slice_thickness_mm(data, "nifti") == pytest.approx(4.0, rel=1e-5)
    assert analysis._slice_thickness_mm(gzip.compress(data), "nifti") == pytest.approx(4.0, rel=1e-5)


@pytest.mark.parametrize(("xyzt_units", "spacing"), [(2 | 64, (0.7, 0.9)), (4, None), (7, None)])
def test_nifti_units_code_nibabel_does_not_know_still_decodes(xyzt_units, spacing):
    # 2 | 64: mm, with a time code no standard names; 4 and 7: spatial codes no standard names. nibabel's
    # get_xyzt_units raises KeyError on each; the volume's pixels are sound, only the unit is unknown.
    image_bytes = bytearray(_nifti(_upright_volume().astype(np.int16), np.diag([0.9, 0.7, 4.0, 1.0])))
    image_bytes[123] = xyzt_units
    scan = decode_scan(bytes(image_bytes), **LIMITS)
    assert len(scan.slices) == 3
    assert scan.pixel_spacing_mm == (pytest.approx(spacing, rel=1e-5) if spacing else None)


def test_nifti_without_voxel_sizes_has_no_spacing_rather_than_a_guessed_millimetre():
    # pixdim 0 with neither qform nor sform: the header does not say how large a voxel is. nibabel
    # replaces 0 by 1 when it reads the header; a tumour area of "n mm²" from that would be invented.
    data = bytearray(_nifti(_upright_volume().astype(np.int16), np.diag([0.9, 0.9, 4.0, 1.0])))
    data[80:92] = struct.pack("<3f", 0.0, 0.0, 0.0)  # pixdim[1..3]
    data[252:256] = struct.pack("<hh", 0, 0)  # qform_code, sform_code
    scan = decode_scan(bytes(data), **LIMITS)
    assert len(scan.slices) == 3
    assert scan.pixel_spacing_mm is None
    assert analysis._slice_thickness_mm(bytes(data), "nifti") is None


def test_nifti_slice_thickness_missing_alone_gives_no_volume_spacing():
    data = bytearray(_nifti(_upright_volume().astype(np.int16), np.diag([0.9, 0.9, 4.0, 1.0])))
    data[88:92] = struct.pack("<f", 0.0)  # pixdim[3]: the slice axis
    data[252:256] = struct.pack("<hh", 1, 0)  # the qform, built from pixdim
    assert analysis._slice_thickness_mm(bytes(data), "nifti") is None


# --- JPEG and PNG -----------------------------------------------------------------------------------


def test_jpeg_is_turned_as_its_exif_orientation_says():
    upright = kaggle_slice("glioma")
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright)))  # a camera-style rotated store
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", exif=exif, quality=95)
    scan = decode_scan(buffer.getvalue(), **LIMITS)
    shown = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buffer.getvalue()))).convert("L"))
    assert scan.slices[0].shape == shown.shape
    assert np.abs(scan.slices[0].astype(int) - shown.astype(int)).mean() < 1.0
    assert np.abs(scan.slices[0].astype(int) - upright.astype(int)).mean() < 1.0


@pytest.mark.parametrize("exif_chunk", [b"garbage!!", b"Exif\x00\x00II*\x00\xff\xff\xff\x7f"])
def test_png_with_exif_that_cannot_be_read_is_decoded_as_stored(exif_chunk):
    import zlib

    upright = kaggle_slice("glioma")
    buffer = io.BytesIO()
    Image.fromarray(upright).save(buffer, format="PNG")
    png = buffer.getvalue()
    chunk = b"eXIf" + exif_chunk
    with_exif = png[:33] + struct.pack(">I", len(exif_chunk)) + chunk + struct.pack(">I", zlib.crc32(chunk)) + png[33:]
    scan = decode_scan(with_exif, **LIMITS)
    assert np.array_equal(scan.slices[0], decode_scan(png, **LIMITS).slices[0])


# --- DICOM ------------------------------------------------------------------------------------------


def _enhanced_mr(frames: list[np.ndarray], *, per_frame: bool = False):
    from pydicom.dataset import Dataset
    from pydicom.uid import EnhancedMRImageStorage

    from tests.diagnostics.samples import dicom_dataset

    ds = dicom_dataset(frames)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = EnhancedMRImageStorage
    for keyword in ("PixelSpacing", "SliceThickness", "ImagePositionPatient"):
        delattr(ds, keyword)
    measures = Dataset()
    measures.PixelSpacing = [0.8, 0.6]  # rows 0.8 mm apart, columns 0.6 mm
    measures.SliceThickness = 3.0
    measures.SpacingBetweenSlices = 3.5
    groups = Dataset()
    groups.PixelMeasuresSequence = [measures]
    if per_frame:
        ds.PerFrameFunctionalGroupsSequence = [groups for _ in frames]
    else:
        ds.SharedFunctionalGroupsSequence = [groups]
    return ds


@pytest.mark.parametrize("per_frame", [False, True])
def test_enhanced_mr_pixel_spacing_is_read_from_its_functional_groups(per_frame):
    from tests.diagnostics.samples import dataset_bytes

    data = dataset_bytes(_enhanced_mr([kaggle_slice("glioma", i) for i in range(3)], per_frame=per_frame))
    scan = decode_scan(data, **LIMITS)
    assert len(scan.slices) == 3
    assert scan.pixel_spacing_mm == pytest.approx((0.8, 0.6))
    assert analysis._slice_thickness_mm(data, "dicom") == pytest.approx(3.5)


def test_jpeg_extended_12_bit_dicom_is_unsupported_compression_not_damaged():
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGExtended12Bit

    from tests.diagnostics.samples import dataset_bytes, dicom_dataset

    ds = dicom_dataset([kaggle_slice("glioma")])  # 12 bits stored
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xc1" + bytes(64)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGExtended12Bit
    with pytest.raises(ScanDecodeError) as caught:
        decode_scan(dataset_bytes(ds), **LIMITS)
    assert caught.value.code == "unsupported_compression"
    assert "JPEG Extended" in caught.value.detail


def _series_zip(positions: list[list[float]], *, orientation=None, thickness: float = 5.0,
                spacing_between: float | None = None, macos_first: bool = False) -> bytes:
    from tests.diagnostics.samples import dataset_bytes, dicom_dataset

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if macos_first:
            archive.writestr("__MACOSX/series/._IM0000.dcm", b"\x00\x05\x16\x07" + bytes(60))
        for i, position in enumerate(positions):
            ds = dicom_dataset([kaggle_slice("meningioma", i)], instance=len(positions) - i)
            ds.ImagePositionPatient = position
            if orientation is not None:
                ds.ImageOrientationPatient = orientation
            ds.SliceThickness = thickness
            if spacing_between is not None:
                ds.SpacingBetweenSlices = spacing_between
            archive.writestr(f"series/IM{i:04d}.dcm", dataset_bytes(ds))
    return buffer.getvalue()


def test_series_volume_spacing_is_the_distance_between_slices_not_their_thickness():
    # 5 mm slices with a 1.5 mm gap, and no SpacingBetweenSlices: each slice stands for 6.5 mm of head.
    data = _series_zip([[0.0, 0.0, 6.5 * i] for i in range(3)], orientation=[1, 0, 0, 0, 1, 0])
    assert analysis._slice_thickness_mm(data, "dicom_series") == pytest.approx(6.5)
    # A sagittal series: the slices step along x, their z is the same.
    data = _series_zip([[4.0 * i, -20.0, 30.0] for i in range(3)], orientation=[0, 1, 0, 0, 0, -1])
    assert analysis._slice_thickness_mm(data, "dicom_series") == pytest.approx(4.0)


def test_series_spacing_skips_the_macos_resource_files_of_a_finder_zip():
    data = _series_zip([[0.0, 0.0, 5.0 * i] for i in range(3)], macos_first=True, spacing_between=None)
    # The reader skips __MACOSX members (the AppleDouble file is no DICOM); so does the volume estimate.
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist()[0].startswith("__MACOSX")
    assert analysis._slice_thickness_mm(data, "dicom_series") == pytest.approx(5.0)


def test_sagittal_series_is_ordered_along_its_slice_normal():
    from tests.diagnostics.samples import dataset_bytes, dicom_dataset

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i, x in enumerate([8.0, 0.0, 4.0]):  # stored out of order; z is the same for all
            ds = dicom_dataset([kaggle_slice("meningioma", i)], instance=1)
            ds.ImagePositionPatient = [x, -20.0, 30.0]
            ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
            archive.writestr(f"IM{i}.dcm", dataset_bytes(ds))
    scan = decode_scan(buffer.getvalue(), **LIMITS)
    # Along the normal, turned to its positive side: by increasing x (0, 4, 8), as an axial series runs by z.
    expected = [kaggle_slice("meningioma", i).astype(np.float32) * 16 for i in (1, 2, 0)]
    assert all(np.array_equal(s, e) for s, e in zip(scan.slices, expected))


def test_dicom_pixel_spacing_of_zero_is_no_spacing():
    # "0\0" (written by some converters for "unknown") would make every tumour 0 mm².
    from tests.diagnostics.samples import dataset_bytes, dicom_dataset

    ds = dicom_dataset([kaggle_slice("glioma")])
    ds.PixelSpacing = [0.0, 0.0]
    assert decode_scan(dataset_bytes(ds), **LIMITS).pixel_spacing_mm is None


def test_axial_series_runs_by_increasing_z_whichever_way_its_normal_points():
    # Rows along -x: the normal points to -z, and positions along it decrease as z grows.
    data = _series_zip([[0.0, 0.0, z] for z in (10.0, 0.0, 5.0)], orientation=[-1, 0, 0, 0, 1, 0])
    scan = decode_scan(data, **LIMITS)
    expected = [kaggle_slice("meningioma", i).astype(np.float32) * 16 for i in (1, 2, 0)]  # z = 0, 5, 10
    assert all(np.array_equal(s, e) for s, e in zip(scan.slices, expected))
    assert analysis._slice_thickness_mm(data, "dicom_series") == pytest.approx(5.0)


@pytest.mark.parametrize("orientation", [["1", "0", "0", "0", "", "0"], [0, 0, 0, 0, 0, 0]])
def test_series_with_an_orientation_that_cannot_be_used_is_ordered_by_z(orientation):
    from tests.diagnostics.samples import dataset_bytes, dicom_dataset

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i, z in enumerate([10.0, 0.0, 5.0]):
            ds = dicom_dataset([kaggle_slice("meningioma", i)], instance=1)
            ds.ImagePositionPatient = [0.0, 0.0, z]
            ds.ImageOrientationPatient = orientation
            archive.writestr(f"IM{i}.dcm", dataset_bytes(ds))
    scan = decode_scan(buffer.getvalue(), **LIMITS)
    expected = [kaggle_slice("meningioma", i).astype(np.float32) * 16 for i in (1, 2, 0)]
    assert all(np.array_equal(s, e) for s, e in zip(scan.slices, expected))


# --- Measurements no head has ---------------------------------------------------------------------


def test_a_pixel_spacing_no_head_has_is_no_spacing():
    """1e200 mm made every tumour infinitely large, which no page or JSON body can show."""
    from tests.diagnostics.samples import dataset_bytes, dicom_dataset

    for spacing in ([1e200, 1e200], [0.5, 80.0], [1e-9, 0.5]):
        ds = dicom_dataset([kaggle_slice("glioma")])
        ds.PixelSpacing = spacing
        ds.SliceThickness = 5.0
        assert decode_scan(dataset_bytes(ds), **LIMITS).pixel_spacing_mm is None, spacing
    ds = dicom_dataset([kaggle_slice("glioma")])
    ds.SliceThickness = 1e200
    assert analysis._slice_thickness_mm(dataset_bytes(ds), "dicom") is None
    data = _nifti(_upright_volume().astype(np.int16), np.diag([1e30, 1e30, 1e30, 1.0]))
    assert decode_scan(data, **LIMITS).pixel_spacing_mm is None
    assert analysis._slice_thickness_mm(data, "nifti") is None


def test_a_single_slice_nifti_is_turned_as_its_affine_says():
    """nibabel reorients 3-D images only; a 2-D one with a flipped x axis was refused as damaged."""
    upright = kaggle_slice("glioma")
    stored = np.rot90(upright, k=-1).astype(np.int16)  # as _upright_volume stores each slice
    flipped = _nifti(stored[::-1, :], np.diag([-0.9, 0.9, 4.0, 1.0]))
    as_stored = decode_scan(_nifti(stored, np.diag([0.9, 0.9, 4.0, 1.0])), **LIMITS).slices
    from_flipped = decode_scan(flipped, **LIMITS).slices
    assert len(as_stored) == len(from_flipped) == 1
    assert np.array_equal(as_stored[0], from_flipped[0])
    assert np.array_equal(as_stored[0], upright.astype(np.float32))
