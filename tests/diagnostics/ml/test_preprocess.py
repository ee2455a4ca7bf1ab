import numpy as np
import pytest

from diagnostics.ml import preprocess

from .helpers import kaggle_slice, requires_data

pytestmark = requires_data


@pytest.mark.parametrize("size", [64, 112])
def test_output_is_uint8_square_and_uses_the_full_range(size):
    prepared = preprocess.preprocess_slice(kaggle_slice("glioma"), size)
    assert prepared.pixels.shape == (size, size)
    assert prepared.pixels.dtype == np.uint8
    assert prepared.pixels.max() == 255 and prepared.pixels.min() == 0


def test_same_answer_for_8_bit_12_bit_and_rgb_encodings_of_one_slice():
    image = kaggle_slice("meningioma").astype(np.float32)
    as_uint8 = preprocess.preprocess_slice(image.astype(np.uint8), 96).pixels
    as_12_bit = preprocess.preprocess_slice(image * 16.0 + 3.0, 96).pixels  # DICOM-like scaling and offset
    as_rgb = preprocess.preprocess_slice(np.repeat(image[..., None], 3, axis=-1).astype(np.uint8), 96).pixels
    assert np.abs(as_uint8.astype(int) - as_12_bit.astype(int)).max() <= 1
    assert np.array_equal(as_uint8, as_rgb)


def test_crop_box_holds_the_head_and_drops_empty_border():
    image = kaggle_slice("pituitary")
    padded = np.zeros((image.shape[0] + 200, image.shape[1] + 100), np.uint8)
    padded[150:150 + image.shape[0], 40:40 + image.shape[1]] = image
    box_plain = preprocess.find_brain_box(image)
    box_padded = preprocess.find_brain_box(padded)
    # The black border moves the box but does not grow it.
    assert abs(box_padded.side - box_plain.side) <= 2
    assert abs((box_padded.top - 150) - box_plain.top) <= 2
    assert np.array_equal(preprocess.preprocess_slice(image, 64).pixels.shape,
                          preprocess.preprocess_slice(padded, 64).pixels.shape)


def test_blank_image_gives_zeros_not_nan():
    prepared = preprocess.preprocess_slice(np.full((50, 70), 7.0), 32)
    assert prepared.pixels.shape == (32, 32) and not prepared.pixels.any()


def test_mask_round_trip_through_model_space_keeps_its_shape():
    image = kaggle_slice("glioma")
    mask = np.zeros(image.shape, bool)
    mask[80:130, 90:150] = True
    prepared = preprocess.preprocess_slice(image, 128)
    model_mask = preprocess.crop_mask(mask, prepared.box, 128)
    back = preprocess.paste_to_input(model_mask.astype(np.float32), prepared.box, binary=True)
    assert back.shape == image.shape and back.dtype == bool
    intersection = np.logical_and(back, mask).sum()
    assert 2 * intersection / (back.sum() + mask.sum()) > 0.95
