"""Network definitions: a compact residual CNN classifier and a small U-Net segmenter.

Both take ``(size, size, 1)`` float input holding the uint8 values of ``preprocess_slice`` (0..255) and
rescale internally, so every caller feeds exactly what preprocessing returns.

The classifier ends in global average pooling and one dense layer. That makes its class activation map
(the last feature maps weighted by the dense weights of a class) equal to Grad-CAM up to a positive
scale, so ``classifier_with_features`` exposes the feature maps next to the logits and the heatmap is a
small matrix product, with no gradient pass at inference time.
"""
from __future__ import annotations

import keras
from keras import layers

FEATURE_LAYER = "cam_features"
LOGITS_LAYER = "logits"


def _conv_bn_relu(x, filters: int, stride: int = 1, name: str | None = None):
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=name)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def _residual_block(x, filters: int, stride: int = 1, name: str | None = None):
    shortcut = x
    y = _conv_bn_relu(x, filters, stride)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal")(y)
    # Zero-initialised last BN scale: each block starts as the identity, which trains faster from scratch.
    y = layers.BatchNormalization(gamma_initializer="zeros")(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, kernel_initializer="he_normal")(shortcut)
        shortcut = layers.BatchNormalization()(shortcut)
    return layers.ReLU(name=name)(layers.Add()([shortcut, y]))


def build_classifier(input_size: int = 128, num_classes: int = 4, width: int = 48,
                     dropout: float = 0.2) -> keras.Model:
    """Residual CNN, about 1.5M parameters at width 48; outputs logits.

    The stem halves the resolution twice before the first residual stage (as in ResNet): on a CPU the
    full-resolution layers cost most and contribute least. Three stages (w, 2w, 4w) end at 1/16 of the
    input, 8x8 at 128 px, which is also the heatmap's resolution.
    """
    inputs = keras.Input((input_size, input_size, 1), name="image")
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    x = _conv_bn_relu(x, width // 2, stride=2)
    x = _conv_bn_relu(x, width, stride=2)
    x = _residual_block(x, width)
    x = _residual_block(x, width * 2, stride=2)
    x = _residual_block(x, width * 2)
    x = _residual_block(x, width * 4, stride=2)
    x = _residual_block(x, width * 4, name=FEATURE_LAYER)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    logits = layers.Dense(num_classes, name=LOGITS_LAYER)(x)
    return keras.Model(inputs, logits, name="tumour_classifier")


def classifier_with_features(classifier: keras.Model) -> keras.Model:
    """Same weights, two outputs: logits and the last feature maps (for the class activation map)."""
    return keras.Model(classifier.inputs, [classifier.output, classifier.get_layer(FEATURE_LAYER).output],
                       name="tumour_classifier_cam")


def build_segmenter(input_size: int = 112, base_filters: int = 12, depth: int = 4) -> keras.Model:
    """U-Net with ``depth`` down/up levels; outputs one logit per pixel (tumour vs not)."""
    inputs = keras.Input((input_size, input_size, 1), name="image")
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    skips = []
    filters = base_filters
    for _ in range(depth):
        x = _conv_bn_relu(x, filters)
        x = _conv_bn_relu(x, filters)
        skips.append(x)
        x = layers.MaxPooling2D()(x)
        filters *= 2
    x = _conv_bn_relu(x, filters)
    x = _conv_bn_relu(x, filters)
    for skip in reversed(skips):
        filters //= 2
        # Nearest upsampling and a 1x1 projection instead of a transposed convolution: no checkerboard
        # artefacts, and far cheaper on a CPU.
        x = layers.UpSampling2D(interpolation="nearest")(x)
        x = layers.Conv2D(filters, 1, use_bias=False)(x)
        x = layers.Concatenate()([x, skip])
        x = _conv_bn_relu(x, filters)
        x = _conv_bn_relu(x, filters)
    logits = layers.Conv2D(1, 1, name="mask_logits")(x)
    return keras.Model(inputs, logits, name="tumour_segmenter")
