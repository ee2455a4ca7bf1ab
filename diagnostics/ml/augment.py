"""In-graph augmentation for batches of (B, S, S, 1) images, optionally with their masks.

One random affine transform per image (flip, rotation, zoom, shift) is applied with a single
ImageProjectiveTransform op per batch, which is far cheaper on a small CPU than a stack of Keras
preprocessing layers; masks get the same geometry. Then brightness, contrast and gamma jitter, because
scanners and export software differ in exactly those.
"""
from __future__ import annotations

import math

import tensorflow as tf


def _affine_transforms(batch: int, size: int, max_rotation_deg: float, max_zoom: float, max_shift: float,
                       flip: bool) -> tf.Tensor:
    angle = tf.random.uniform([batch], -1.0, 1.0) * (max_rotation_deg * math.pi / 180.0)
    scale = 1.0 + tf.random.uniform([batch], -max_zoom, max_zoom)
    shift_x = tf.random.uniform([batch], -max_shift, max_shift) * size
    shift_y = tf.random.uniform([batch], -max_shift, max_shift) * size
    mirror = tf.where(tf.random.uniform([batch]) < 0.5, -1.0, 1.0) if flip else tf.ones([batch])
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    # Maps each output pixel back to the input pixel it samples: rotate and zoom about the centre.
    a0, a1 = mirror * cos, mirror * sin
    b0, b1 = -sin, cos
    centre = (size - 1) / 2.0
    a2 = centre + shift_x - (a0 * centre + a1 * centre)
    b2 = centre + shift_y - (b0 * centre + b1 * centre)
    zeros = tf.zeros([batch])
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def _warp(images: tf.Tensor, transforms: tf.Tensor, interpolation: str) -> tf.Tensor:
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        interpolation=interpolation, fill_mode="CONSTANT", fill_value=0.0)


def augment_batch(images: tf.Tensor, masks: tf.Tensor | None = None, *, max_rotation_deg: float = 12.0,
                  max_zoom: float = 0.10, max_shift: float = 0.06, flip: bool = True,
                  intensity: float = 0.12):
    """Random geometry and intensity for float images in 0..255 (and the same geometry for masks)."""
    images = tf.cast(images, tf.float32)
    batch, size = tf.shape(images)[0], images.shape[1]
    transforms = _affine_transforms(batch, size, max_rotation_deg, max_zoom, max_shift, flip)
    images = _warp(images, transforms, "BILINEAR")
    contrast = 1.0 + tf.random.uniform([batch, 1, 1, 1], -intensity, intensity)
    brightness = tf.random.uniform([batch, 1, 1, 1], -intensity, intensity) * 255.0 * 0.5
    gamma = tf.exp(tf.random.uniform([batch, 1, 1, 1], -intensity, intensity) * 1.5)
    images = 255.0 * tf.pow(tf.clip_by_value(images / 255.0, 0.0, 1.0), gamma)
    images = tf.clip_by_value(images * contrast + brightness, 0.0, 255.0)
    if masks is None:
        return images
    masks = _warp(tf.cast(masks, tf.float32), transforms, "BILINEAR")
    return images, tf.cast(masks >= 0.5, tf.float32)
