"""Network definitions: a compact residual CNN classifier, a small U-Net segmenter, and a U-Net whose
encoder is the classifier's residual trunk (so it can start from classification weights).

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


def build_segmenter(input_size: int = 112, base_filters: int = 12, depth: int = 4,
                    mirror_channel: bool = False, name: str = "tumour_segmenter") -> keras.Model:
    """U-Net with ``depth`` down/up levels; outputs one logit per pixel (tumour vs not).

    With ``mirror_channel`` the network sees the slice beside its own left-right mirror image (as a
    second channel, computed in the graph). Preprocessing centres the head, so the mirror puts the other
    hemisphere under every pixel: a ventricle, a sulcus or the skull base has its twin there, a tumour
    does not. The failures this is aimed at are a faint glioma passed over for such a symmetric dark
    structure nearby.
    """
    inputs = keras.Input((input_size, input_size, 1), name="image")
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    if mirror_channel:
        x = layers.Concatenate(name="with_mirror")([x, keras.ops.flip(x, axis=2)])
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
    return keras.Model(inputs, logits, name=name)


def widen_segmenter(narrow: keras.Model, base_filters: int) -> keras.Model:
    """A ``build_segmenter`` U-Net with ``base_filters`` that computes exactly what ``narrow`` computes.

    Each layer keeps ``narrow``'s weights in its first channels; the added channels start from the
    builder's random weights, but every weight reading them starts at zero, so the wider network's logits
    equal the narrow one's until training moves them. Fine-tuning then adds capacity to a trained network
    instead of starting a wider one from scratch, which these CPUs cannot afford to train for long.
    """
    architecture = segmenter_architecture(narrow)
    if architecture["builder"] != "build_segmenter":
        raise ValueError("only a plain U-Net (build_segmenter) can be widened")
    old_filters = architecture["base_filters"]
    if base_filters < old_filters:
        raise ValueError(f"cannot widen a U-Net of {old_filters} base filters to {base_filters}")
    wide = build_segmenter(int(narrow.input_shape[1]), base_filters=base_filters,
                           mirror_channel=architecture.get("mirror_channel", False), name=narrow.name)
    old_layers = [layer for layer in narrow.layers if layer.weights]
    new_layers = [layer for layer in wide.layers if layer.weights]
    if [type(layer) for layer in old_layers] != [type(layer) for layer in new_layers]:
        raise ValueError("the narrow network is not a U-Net of this builder's depth")
    for old, new in zip(old_layers, new_layers):
        old_weights, new_weights = old.get_weights(), new.get_weights()
        if isinstance(old, layers.Conv2D):
            kernel = new_weights[0]
            kept_inputs = _narrow_channels_of(new.input, int(old.input.shape[-1]))
            kernel[..., :old.filters] = 0.0
            kernel[:, :, kept_inputs, :old.filters] = old_weights[0]
            new_weights[0] = kernel
            if old.use_bias:
                new_weights[1][:old.filters] = old_weights[1]
        else:  # BatchNormalization: the narrow channels' scale, shift and statistics
            for new_weight, old_weight in zip(new_weights, old_weights):
                new_weight[:len(old_weight)] = old_weight
        new.set_weights(new_weights)
    return wide


def _narrow_channels_of(tensor, narrow_channels: int) -> list[int]:
    """Where the narrow network's ``narrow_channels`` input channels of a convolution sit in ``tensor``.

    A decoder's concatenation holds the upsampled projection's channels and then the skip's, each wider
    than the narrow network's, so the narrow channels sit at the start of each half; every other input
    (the image, its mirror, a convolution's or a pooling's output) keeps them first.
    """
    producer = tensor._keras_history[0]
    if isinstance(producer, layers.Concatenate) and producer.name != "with_mirror":
        half, narrow_half = int(tensor.shape[-1]) // 2, narrow_channels // 2
        return list(range(narrow_half)) + list(range(half, half + narrow_half))
    return list(range(narrow_channels))


def _last_activation_at_each_scale(model: keras.Model) -> dict:
    """The deepest ReLU output of ``model`` at each spatial side, keyed by that side."""
    found = {}
    for layer in model.layers:
        if isinstance(layer, layers.ReLU):
            found[int(layer.output.shape[1])] = layer.output
    return found


def build_encoder_segmenter(input_size: int = 160, width: int = 40, decoder_filters: int = 16, *,
                            trunk: keras.Model | None = None,
                            name: str = "tumour_encoder_segmenter") -> keras.Model:
    """U-Net on the classifier's residual trunk; outputs one logit per pixel.

    The encoder is ``build_classifier(input_size, width=width)`` up to its last feature maps (1/16 of
    the input, 4 x width channels). Pass a trained classifier as ``trunk`` and the segmenter is built
    on its very layers, so what it learned by classifying whole scans (what a glioma looks like beside
    a ventricle or a sulcus) is where segmentation starts. The decoder climbs back with the trunk's
    deepest activation at each scale as the skip connection, and a thin full-resolution branch keeps
    the fine outline that the classifier's stride-2 stem throws away.
    """
    if trunk is None:
        trunk = build_classifier(input_size, width=width)
    elif int(trunk.input_shape[1]) != input_size:
        raise ValueError(f"the trunk takes {trunk.input_shape[1]} px input, not {input_size}")
    scales = _last_activation_at_each_scale(trunk)
    rescaled = next(layer for layer in trunk.layers if isinstance(layer, layers.Rescaling)).output
    full = _conv_bn_relu(rescaled, decoder_filters)
    x = trunk.get_layer(FEATURE_LAYER).output
    trunk_width = int(x.shape[-1]) // 4
    # Decoder widths: the trunk's own at 1/8 and 1/4, then the full-resolution branch's at 1/2 and 1/1.
    decoder_widths = {input_size // 8: trunk_width * 2, input_size // 4: trunk_width,
                      input_size // 2: decoder_filters * 2, input_size: decoder_filters}
    side = int(x.shape[1])
    while side < input_size:
        side *= 2
        skip = full if side == input_size else scales[side]
        x = layers.UpSampling2D(interpolation="nearest")(x)
        x = layers.Conv2D(decoder_widths[side], 1, use_bias=False)(x)
        x = layers.Concatenate()([x, skip])
        x = _conv_bn_relu(x, decoder_widths[side])
        x = _conv_bn_relu(x, decoder_widths[side])
    logits = layers.Conv2D(1, 1, name="mask_logits")(x)
    return keras.Model(trunk.input, logits, name=name)


def build_segmenter_ensemble(input_size: int, members: list[dict]) -> keras.Model:
    """One network whose mask logits are the mean of its members' (each a ``segmenter_architecture``).

    Segmenters that start from different places (a plain U-Net from scratch, a U-Net on the
    classifier's trunk) miss different slices; averaging their logits keeps what either is sure of.
    Served as one TFLite graph, so the predictor sees one segmenter.
    """
    inputs = keras.Input((input_size, input_size, 1), name="image")
    logits = []
    for index, member in enumerate(members):
        arguments = dict(member)
        builder_name = arguments.pop("builder")
        if builder_name not in ("build_segmenter", "build_encoder_segmenter"):
            raise ValueError(f"not a segmenter builder: {builder_name}")
        builder = globals()[builder_name]
        # Numbered names: two members of one architecture may not share a name in one graph.
        default_name = "tumour_segmenter" if builder_name == "build_segmenter" else "tumour_encoder_segmenter"
        logits.append(builder(input_size, **arguments, name=f"{default_name}_{index}")(inputs))
    return keras.Model(inputs, layers.Average(name="mask_logits")(logits), name="tumour_segmenter_ensemble")


def segmenter_members(model: keras.Model) -> list[keras.Model]:
    """The U-Nets inside ``model`` with their weights: an ensemble's members in order, else ``[model]``."""
    if model.name != "tumour_segmenter_ensemble":
        return [model]
    return [layer for layer in model.layers if isinstance(layer, keras.Model)]


def segmenter_architecture(model: keras.Model) -> dict:
    """The builder and arguments that rebuild ``model`` (recorded in its bundle)."""
    if model.name == "tumour_segmenter_ensemble":
        return {"builder": "build_segmenter_ensemble",
                "members": [segmenter_architecture(member) for member in segmenter_members(model)]}
    if model.name.startswith("tumour_encoder_segmenter"):
        return {"builder": "build_encoder_segmenter",
                "width": int(model.get_layer(FEATURE_LAYER).output.shape[-1]) // 4,
                "decoder_filters": int(model.get_layer("mask_logits").input.shape[-1])}
    first_conv = next(layer for layer in model.layers if isinstance(layer, layers.Conv2D))
    architecture = {"builder": "build_segmenter", "base_filters": int(first_conv.filters)}
    if int(first_conv.input.shape[-1]) == 2:
        architecture["mirror_channel"] = True
    return architecture
