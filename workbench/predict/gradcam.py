"""Grad-CAM (Selvaraju et al. 2017) from the last convolutional block, with `tf.GradientTape`.

    cam = GradCam(model)                       # once per loaded model
    logits, maps = cam(x, classes)             # x: preprocessed [N, H, W, 3]; maps: [N, h, w] in 0..1
    rgb = overlay(picture.display, maps[0])    # uint8 [D, D, 3]: the map in colour over the picture

Why no library: keras-vis and tf-keras-vis are written against tf.keras (Keras 2, `tf_keras`), Keras 3
and KerasCV have no Grad-CAM (keras-cv issue 171 is still open), and eli5's Keras 3 support brings a
general explanation library for what is ~20 lines here: one tape over a model that returns both the
last 4-D activation and the logits, the gradient of the chosen logit pooled per channel as the
channel weights, ReLU of the weighted sum.

"Last convolutional block": the last layer of the model whose output is 4-D (the final block's
activation in the zoo's models, before global pooling; the whole backbone in a fine-tuned model).
"""

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from workbench.errors import UserError


def last_conv_layer(model):
    """The last layer of `model` (top level) with a 4-D output: its last convolutional block."""
    for layer in reversed(model.layers):
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):  # a layer used more than once has no single output
            continue
        if len(shape) == 4 and not layer.name.startswith("input"):
            return layer
    raise UserError(f"model {model.name!r} has no convolutional layer; no class-activation map can be drawn")


class GradCam:
    """Logits and class-activation maps of a batch in one forward and one backward pass."""

    def __init__(self, model):
        self.layer = last_conv_layer(model)
        try:
            both = keras.Model(model.inputs, [self.layer.output, model.output])
            self._forward = lambda x: both(x, training=False)
        except ValueError:
            # A nested model (a fine-tune's backbone): its `.output` belongs to its own graph, not to the
            # outer one. Those models are a chain of layers, so run the chain and keep the block's output.
            chain = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]

            def forward(x):
                features = None
                for layer in chain:
                    x = layer(x, training=False)
                    features = x if layer is self.layer else features
                return features, x

            self._forward = forward
        self._step = tf.function(self._compute, reduce_retracing=True)

    def _compute(self, x, classes):
        with tf.GradientTape() as tape:
            features, logits = self._forward(x)
            features = tf.cast(features, tf.float32)  # mixed precision: maps in float32
            logits = tf.cast(logits, tf.float32)
            # A negative class: the image's own top-1 class.
            chosen = tf.where(classes < 0, tf.argmax(logits, axis=1, output_type=tf.int32), classes)
            score = tf.gather(logits, chosen, axis=1, batch_dims=1)
        grads = tape.gradient(score, features)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        maps = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))
        peak = tf.reduce_max(maps, axis=(1, 2), keepdims=True)
        return logits, tf.math.divide_no_nan(maps, peak)

    def __call__(self, x, classes=None):
        """(logits float32 [N, K], maps float32 [N, h, w] in 0..1) for preprocessed images `x` and the
        classes to explain (None or -1: each image's top-1 class)."""
        x = tf.convert_to_tensor(np.asarray(x, np.float32))
        n = int(x.shape[0])
        classes = np.full(n, -1, np.int32) if classes is None else np.asarray(classes, np.int32).reshape(n)
        logits, maps = self._step(x, tf.constant(classes))
        return logits.numpy(), maps.numpy()


def _jet(values: np.ndarray) -> np.ndarray:
    """The classic jet colour map of values in 0..1: uint8 [..., 3] (blue, cyan, yellow, red)."""
    v = np.clip(values, 0, 1)[..., None]
    channels = np.clip(1.5 - np.abs(4 * v - np.array([3.0, 2.0, 1.0])), 0, 1)
    return (255 * channels).astype(np.uint8)


OVERLAY_ALPHA = 0.5  # the colour's share where the map peaks; it fades with the map to none where it is 0


def overlay(display: np.ndarray, cam: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """The map, smoothly enlarged to the picture's size and coloured, blended over the picture with an
    opacity that follows the map: `alpha` at its peak, the picture itself where the map is 0. A uniform
    0.45 of jet hid the picture under dark blue wherever the map was cold (most of it; all of an empty map)."""
    height, width = display.shape[:2]
    enlarged = np.clip(
        np.asarray(Image.fromarray(np.asarray(cam, np.float32)).resize((width, height), Image.Resampling.BILINEAR)),
        0,
        1,
    )
    weight = (alpha * enlarged)[..., None]
    blended = (1 - weight) * display.astype(np.float32) + weight * _jet(enlarged).astype(np.float32)
    return np.clip(blended, 0, 255).astype(np.uint8)
