"""The two Keras pieces cifar10-airbench needs that Keras does not have: an identity (Dirac) initializer
for convolution kernels and a bias whose trainable variable is scaled.

Both are registered serializable objects (package "workbench"), so a `.keras` file that uses them loads
with `safe_mode=True` once `models` is imported (the zoo imports this module).

    Dirac(base="he_normal")  the first min(C_in, C_out) filters pass their input channel through
                             unchanged (a 1 at the kernel's centre, zeros elsewhere), as PyTorch's
                             `nn.init.dirac_(w[:w.size(1)])` in airbench; the other filters keep `base`.
    ScaledBias(scale=c)      y = x + c * b' per channel, b' the variable: plain SGD on b' moves the bias
                             b = c * b' by c^2 times the step a plain bias would take (c = 8: airbench's 64x
                             learning rate of BatchNorm biases), and an L2(wd / 2) regulariser on b' decays b
                             by lr * wd * b per step, as a plain weight would: the paper's rule (its optimizer
                             scales the biases' learning rate, not their weight decay).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

PACKAGE = "workbench"


@keras.saving.register_keras_serializable(package=PACKAGE)
class Dirac(keras.initializers.Initializer):
    """Identity init of a conv kernel [kh, kw, C_in, C_out]: filter i < min(C_in, C_out) is the unit
    impulse on input channel i at the kernel's centre; the rest come from `base` (a Keras initializer
    name). Why by hand: Keras has no Dirac initializer (`keras.initializers.Identity` is for 2-D
    matrices only)."""

    def __init__(self, base: str = "he_normal") -> None:
        self.base = base

    def __call__(self, shape, dtype=None):
        if len(shape) != 4:
            raise ValueError(f"Dirac initializes a 4-D conv kernel [kh, kw, in, out], got shape {tuple(shape)}")
        kh, kw, c_in, c_out = (int(s) for s in shape)
        base = keras.initializers.get(self.base)
        kernel = np.array(keras.ops.convert_to_numpy(base(shape, dtype="float32")))
        n = min(c_in, c_out)
        kernel[:, :, :, :n] = 0.0
        kernel[kh // 2, kw // 2, np.arange(n), np.arange(n)] = 1.0
        return ops.cast(kernel, dtype or "float32")

    def get_config(self) -> dict:
        return {"base": self.base}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScaledBias(layers.Layer):
    """y = x + scale * bias over the last axis; `bias` (zeros at first) is what the optimizer sees.
    regularizer: on the variable (a Keras regularizer or its config), e.g. L2(wd / 2)."""

    def __init__(self, scale: float = 1.0, regularizer=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.regularizer = keras.regularizers.get(regularizer)

    def build(self, input_shape) -> None:
        self.bias = self.add_weight(
            name="bias", shape=(int(input_shape[-1]),), initializer="zeros", regularizer=self.regularizer
        )

    def call(self, inputs):
        return inputs + ops.cast(self.scale * self.bias, inputs.dtype)

    def effective_bias(self) -> np.ndarray:
        """The bias the layer adds (scale times its variable)."""
        return self.scale * keras.ops.convert_to_numpy(self.bias)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "scale": self.scale,
            "regularizer": keras.regularizers.serialize(self.regularizer) if self.regularizer else None,
        }
