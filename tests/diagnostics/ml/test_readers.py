import gzip
import io
import pickle
import zipfile

import numpy as np
import pytest
from PIL import Image

from diagnostics.ml import readers
from diagnostics.ml.readers import ScanDecodeError, decode_scan, sniff_type

from .helpers import FIGSHARE, dicom_bytes, kaggle_file, kaggle_slice, nifti_bytes, requires_data

pytestmark = requires_data
LIMITS = dict(max_pixels=1024 * 1024, max_frames=64)


def _error_code(data, **limits) -> str:
    with pytest.raises(ScanDecodeError) as caught:
        decode_scan(data, **{**LIMITS, **limits})
    return caught.value.code


def test_kaggle_jpeg_decodes_to_one_grayscale_slice():
    scan = decode_scan(kaggle_file("glioma").read_bytes(), **LIMITS)
    assert scan.kind == "jpeg" and len(scan.slices) == 1
    assert scan.slices[0].ndim == 2 and scan.patient_identifiers == {}


def test_figshare_png_decodes_and_a_path_is_accepted():
    scan = decode_scan(FIGSHARE / "images" / "1.png", **LIMITS)
    assert scan.kind == "png" and scan.slices[0].shape == (256, 256)


def test_type_is_sniffed_from_content_not_name(tmp_path):
    misnamed = tmp_path / "scan.dcm"
    misnamed.write_bytes(kaggle_file("notumor").read_bytes())
    assert decode_scan(misnamed, **LIMITS).kind == "jpeg"


def test_mr_dicom_keeps_identifiers_apart_from_pixels():
    pixels = kaggle_slice("meningioma")
    scan = decode_scan(dicom_bytes(pixels), **LIMITS)
    assert scan.kind == "dicom"
    assert scan.pixel_spacing_mm == (0.5, 0.5)
    assert scan.patient_identifiers == {"patient_name": "Doe^Jane", "patient_id": "MRN-0042", "birth_date": "19700101"}
    assert np.allclose(scan.slices[0], pixels.astype(np.float32) * 16)


def test_ct_dicom_is_refused_as_not_mr():
    assert _error_code(dicom_bytes(kaggle_slice("glioma"), modality="CT")) == "not_mr"


def test_a_scan_that_is_no_mri_is_named_in_a_patients_words():
    with pytest.raises(ScanDecodeError) as refused:
        decode_scan(dicom_bytes(kaggle_slice("glioma"), modality="CT"))
    assert refused.value.detail == ("This file is a CT scan (DICOM modality CT), and only MRI scans can be read. "
                                    "Upload the MRI scan instead.")
    assert "not an MRI scan (DICOM modality SM)" in readers.not_mr_sentence("SM")
    assert readers.not_mr_sentence("").startswith("This file does not say what kind of scan it is")


def test_zipped_dicom_series_is_ordered_by_position():
    slices = [kaggle_slice("glioma", i) for i in range(3)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, z in (("c.dcm", 20.0), ("a.dcm", 0.0), ("b.dcm", 10.0)):
            archive.writestr(name, dicom_bytes(slices[int(z // 10)], instance=int(z // 10) + 1, z=z))
    scan = decode_scan(buffer.getvalue(), **LIMITS)
    assert scan.kind == "dicom_series" and len(scan.slices) == 3
    for decoded, original in zip(scan.slices, slices):
        assert np.allclose(decoded, original.astype(np.float32) * 16)


def test_zip_with_a_non_dicom_member_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.jpg", kaggle_file("glioma").read_bytes())
    assert _error_code(buffer.getvalue()) == "unsupported_type"


@pytest.mark.parametrize("compress", [False, True])
def test_nifti_volume_keeps_only_slices_with_a_head(compress):
    head = kaggle_slice("pituitary").astype(np.float32)
    volume = np.zeros(head.shape[::-1] + (5,), np.float32)
    for k in (1, 2, 3):  # slices 0 and 4 are empty air
        volume[:, :, k] = np.rot90(head, -1)  # stored in RAS order; the reader rotates back
    scan = decode_scan(nifti_bytes(volume, compress=compress), **LIMITS)
    assert scan.kind == "nifti" and len(scan.slices) == 3
    assert np.allclose(scan.slices[0], head)
    assert scan.pixel_spacing_mm == pytest.approx((0.9, 0.9))


@pytest.mark.parametrize("stored", ["foot to head", "head to foot"])
def test_a_volumes_slices_keep_the_numbers_the_file_gives_them(stored):
    import nibabel as nib

    head = kaggle_slice("pituitary").astype(np.float32)
    volume = np.zeros(head.shape[::-1] + (8,), np.float32)
    for k in (3, 4):  # the rest is air
        volume[:, :, k] = np.rot90(head, -1)
    affine = np.diag([0.9, 0.9, 5.0 if stored == "foot to head" else -5.0, 1.0])
    scan = decode_scan(nib.Nifti1Image(volume, affine).to_bytes(), **LIMITS)
    assert len(scan.slices) == 2 and scan.slices_in_file == 8
    # Foot to head in the decoded order, whichever way the file stores them.
    assert [scan.slice_number(i) for i in range(2)] == ([3, 4] if stored == "foot to head" else [4, 3])


def test_blank_volume_has_no_brain_slices():
    assert _error_code(nifti_bytes(np.zeros((64, 64, 4)))) == "no_brain_slices"


def test_limits_are_enforced_before_decoding():
    image = kaggle_file("glioma").read_bytes()
    assert _error_code(image, max_pixels=100 * 100) == "too_many_pixels"
    assert _error_code(nifti_bytes(np.random.rand(32, 32, 10) * 100), max_frames=4) == "too_many_frames"
    assert _error_code(gzip.compress(b"\0" * 10_000), max_decompressed_bytes=1000) == "too_large"


def test_an_image_far_longer_than_wide_is_refused_before_it_is_analysed():
    """A 512 x 32768 strip within the pixel limit took 14 GB to preprocess (its head box is squared)."""
    strip = np.tile(kaggle_slice("glioma")[:64, :64], (1, 5))  # 64 x 320: five times longer than wide
    buffer = io.BytesIO()
    Image.fromarray(strip).save(buffer, format="PNG")
    with pytest.raises(ScanDecodeError) as refused:
        decode_scan(buffer.getvalue(), **LIMITS)
    assert refused.value.code == "extreme_shape"
    assert refused.value.detail == ("The image is 320 × 64 pixels: far longer one way than the other, which an "
                                    "MRI slice never is.")
    assert _error_code(nifti_bytes(np.random.rand(16, 80, 3) * 100)) == "extreme_shape"
    buffer = io.BytesIO()
    Image.fromarray(strip[:, :256]).save(buffer, format="PNG")  # four times: still taken
    assert len(decode_scan(buffer.getvalue(), **LIMITS).slices) == 1


def test_a_single_slice_nifti_is_measured_by_its_header_before_its_pixels_are_read():
    """A 97 kB gzipped slice declaring 10000 x 10000 pixels had its pixels read and scaled (about 1 GB)
    before the limit refused it. Here the header alone says so: the pixels it declares are not even there."""
    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_shape((10000, 10000))
    header.set_data_dtype(np.uint8)
    declared_only = header.binaryblock + b"\0" * 4 + b"\0" * 64  # vox_offset 352, then a few bytes of data
    assert _error_code(declared_only) == "too_many_pixels"


def test_a_zipped_series_is_refused_as_its_frames_pass_the_limit_not_after_all_are_decoded(monkeypatch):
    from tests.diagnostics.samples import dataset_bytes, dicom_dataset

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(4):  # two frames each
            ds = dicom_dataset([kaggle_slice("glioma", 2 * i), kaggle_slice("glioma", 2 * i + 1)], instance=i + 1)
            archive.writestr(f"IM{i}.dcm", dataset_bytes(ds))
    decoded = []
    read_dicom = readers._read_dicom
    monkeypatch.setattr(readers, "_read_dicom", lambda *args: decoded.append(args[2]) or read_dicom(*args))
    with pytest.raises(ScanDecodeError) as refused:
        decode_scan(buffer.getvalue(), **{**LIMITS, "max_frames": 5})
    assert refused.value.code == "too_many_frames"
    assert refused.value.detail == "The series has more than 5 frames; the limit is 5."
    # Each member was given what the earlier ones left; the fourth was never decoded.
    assert decoded == [5, 3, 1]
    assert len(decode_scan(buffer.getvalue(), **{**LIMITS, "max_frames": 8}).slices) == 8


def test_corrupted_and_foreign_input_get_clear_codes():
    jpeg = kaggle_file("notumor").read_bytes()
    assert _error_code(jpeg[:400]) == "unreadable"
    assert _error_code(b"%PDF-1.7 not a scan") == "unsupported_type"
    assert _error_code(b"") == "empty"
    assert _error_code(gzip.compress(b"plain text")) == "unsupported_type"
    broken_dicom = dicom_bytes(kaggle_slice("glioma"))[:300]
    assert _error_code(broken_dicom) == "unreadable"


def test_sniffing_and_error_pickling():
    png = io.BytesIO()
    Image.new("L", (4, 4)).save(png, format="PNG")
    assert sniff_type(png.getvalue()) == "png"
    assert sniff_type(b"\x1f\x8b rest") == "gzip"
    error = pickle.loads(pickle.dumps(ScanDecodeError("not_mr", "a CT scan")))
    assert (error.code, error.detail) == ("not_mr", "a CT scan")


def test_damaged_deflate_streams_and_header_fields_are_unreadable():
    from tests.diagnostics import samples

    assert _error_code(samples.gzip_with_damaged_stream()) == "unreadable"
    assert _error_code(samples.zip_with_damaged_stream()) == "unreadable"
    assert _error_code(samples.dicom_with_damaged_field("Modality", b"ZZ")) == "unreadable"
    assert _error_code(samples.dicom_with_damaged_field("Columns", b"UL")) == "unreadable"
    # In a series the identifiers are read too: a damaged one is refused, not a crash.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.dcm", samples.dicom_with_damaged_field("PatientBirthDate", b"ZZ"))
    assert _error_code(buffer.getvalue()) == "unreadable"


def test_deflated_dicom_is_read_and_inflated_only_within_the_limit():
    from tests.diagnostics import samples

    data = samples.deflated_dicom(1024)  # about 2 MB of pixels, a few kB deflated
    assert len(data) < 200_000
    scan = decode_scan(data, **LIMITS)
    assert scan.kind == "dicom" and scan.slices[0].shape == (1024, 1024)
    assert _error_code(data, max_decompressed_bytes=1_000_000) == "too_large"


def test_rle_dicom_is_decoded_and_a_segment_that_outgrows_its_image_refused():
    from pydicom.uid import RLELossless

    from tests.diagnostics import samples

    pixels = kaggle_slice("glioma")
    ds = samples.dicom_dataset([pixels])
    ds.compress(RLELossless)
    scan = decode_scan(samples.dataset_bytes(ds), **LIMITS)
    assert np.allclose(scan.slices[0], pixels.astype(np.float32) * 16)
    # 200 kB that pydicom would expand to 12.8 MB for a 64x64 image.
    assert _error_code(samples.rle_dicom_bomb(64, 100_000)) == "too_large"


@pytest.mark.parametrize("codec", ["JPEG", "JPEG2000"])
def test_compressed_dicom_is_decoded_and_a_codestream_larger_than_its_header_refused_unread(codec, monkeypatch):
    """Pillow decodes a codestream at its own size: a 224 x 224 header over a 13000 x 13000 JPEG took
    gigabytes, past the pixel limit checked on the header."""
    from PIL import ImageFile

    from tests.diagnostics import samples

    pixels = kaggle_slice("glioma")[:128, :128]
    scan = decode_scan(samples.compressed_dicom([pixels, pixels[::-1]], codec), **LIMITS)
    assert [s.shape for s in scan.slices] == [(128, 128), (128, 128)]
    assert np.abs(scan.slices[0] - pixels).mean() < 2 and np.abs(scan.slices[1] - pixels[::-1]).mean() < 2

    decoded = []
    load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: decoded.append(image.size) or load(image))
    bomb = samples.compressed_dicom([np.zeros((600, 600))], codec, rows=64, columns=64)
    with pytest.raises(ScanDecodeError) as refused:
        decode_scan(bomb, **LIMITS)
    assert refused.value.code == "unreadable" and decoded == []
    assert refused.value.detail == ("The DICOM file is damaged: its header says the image is 64 × 64 pixels, but "
                                    "its compressed image data is 600 × 600.")


def test_frames_beyond_a_dicoms_header_are_not_read():
    """pydicom returns every frame the data holds: past the frame limit checked on NumberOfFrames, and, under
    a header saying one frame, three frames were averaged as colour samples into a 3 x 224 strip."""
    from tests.diagnostics import samples

    scan = decode_scan(samples.dicom_with_frames_beyond_its_header(2, 6), **{**LIMITS, "max_frames": 2})
    assert len(scan.slices) == 2
    scan = decode_scan(samples.dicom_with_frames_beyond_its_header(None, 3), **LIMITS)
    assert [s.shape for s in scan.slices] == [(224, 224)]
    assert np.allclose(scan.slices[0], samples.slice_array("glioma", 0).astype(np.float32) * 16)


def test_a_nifti_declaring_more_voxels_than_it_holds_is_refused_before_they_are_allocated(monkeypatch):
    """nibabel allocates what the header declares before finding the data short: a 384-byte upload declaring
    4096 x 4096 x 64 voxels took 2 GB."""
    import nibabel.arrayproxy

    allocated = []
    read = nibabel.arrayproxy.array_from_file
    monkeypatch.setattr(nibabel.arrayproxy, "array_from_file",
                        lambda shape, dtype, *args, **kwargs: allocated.append(shape) or read(shape, dtype, *args,
                                                                                              **kwargs))
    import nibabel as nib

    volume = np.random.rand(32, 32, 6) * 100
    # As stored (RAS), in the radiological layout (LAS, which is reoriented: that reads every voxel), and as
    # a time series of two volumes (only the first is read).
    assert len(decode_scan(nifti_bytes(volume), **LIMITS).slices) > 0 and allocated  # what the spy sees
    for whole in (nifti_bytes(volume), nib.Nifti1Image(volume.astype(np.float32), np.diag([-1.0, 1, 1, 1])).to_bytes(),
                  nifti_bytes(np.stack([volume, volume], axis=-1))):
        assert len(decode_scan(whole, **LIMITS).slices) > 0
        allocated.clear()
        with pytest.raises(ScanDecodeError) as refused:
            decode_scan(whole[:5000], **LIMITS)  # short of the first volume
        assert refused.value.code == "unreadable" and allocated == []
        assert refused.value.detail.startswith("The NIfTI file is truncated: its header describes ")
    # The first volume of a time series is all it must hold.
    series = nifti_bytes(np.stack([volume, volume], axis=-1))
    assert len(decode_scan(series[:352 + 32 * 32 * 6 * 4], **LIMITS).slices) > 0


def test_declared_image_size_is_checked_against_the_limit_before_decoding():
    assert _error_code(dicom_bytes(kaggle_slice("glioma")), max_decompressed_bytes=50_000) == "too_large"


def test_compression_without_a_decoder_and_mixed_series_get_their_own_codes():
    from tests.diagnostics import samples

    with pytest.raises(ScanDecodeError) as caught:
        decode_scan(samples.dicom_needing_a_missing_codec(), **LIMITS)
    assert caught.value.code == "unsupported_compression" and "\n" not in caught.value.detail
    assert _error_code(samples.dicom_series_of_mixed_sizes()) == "mixed_sizes"
    with pytest.raises(ScanDecodeError) as caught:
        decode_scan(samples.png_with_garbage_body(), **LIMITS)
    assert caught.value.detail == "The PNG image is damaged or truncated."


def test_a_blank_picture_is_refused_in_words_about_a_picture():
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64), 255, dtype=np.uint8)).save(buffer, format="PNG")
    with pytest.raises(ScanDecodeError) as refused:
        decode_scan(buffer.getvalue())
    assert refused.value.code == "no_brain_slices" and refused.value.detail == (
        "The image is blank or almost uniform: it shows no head.")
