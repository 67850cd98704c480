"""The training-time parts of cifar10-airbench's recipe as Keras callbacks: lookahead, and freezing the
whitening bias after its epochs. `recipe_callbacks(spec, steps)` gives a run's (none unless its spec asks).

Lookahead (the paper's `LookaheadState`, from hlb-cifar10): slow weights start as the model's; every `every`
steps, at global step t of T,

    decay = 0.95 ** every * (t / T) ** 3
    slow  = slow + (1 - decay) * (fast - slow)        (torch's slow.lerp_(fast, 1 - decay))
    fast  = slow

and at the last step the model takes the slow weights. Early in training decay is near 0 (the slow weights
follow the fast ones); at the end each sync keeps 77% of the slow weights (every = 5). Every float weight of
the model takes part, BatchNorm's moving statistics too, as in the paper. A resumed run starts its slow
weights again from the checkpoint's weights (they are not stored): with every dividing the steps of an epoch,
the fast and slow weights are the same at an epoch's end, so nothing is lost.

Why callbacks and not an optimizer wrapper: the rule touches BatchNorm's statistics, which no optimizer sees,
and Keras has no lookahead (tensorflow-addons, which had one, is end-of-life).
"""

from __future__ import annotations

from typing import Any

import keras

from models.airbench import WHITEN_BIAS

LOOKAHEAD_BASE = 0.95  # the paper's decay per step at the end of training


def lookahead_decay(step: int, total: int, every: int) -> float:
    """The share of the slow weights a sync at global step `step` of `total` keeps (the paper's alpha)."""
    return float(LOOKAHEAD_BASE**every * (min(step, total) / max(total, 1)) ** 3)


class Lookahead(keras.callbacks.Callback):
    """Every `every` training steps the slow weights move toward the model's and replace them (module doc)."""

    def __init__(self, every: int, total_steps: int) -> None:
        super().__init__()
        self.every, self.total = int(every), int(total_steps)
        self.step = 0
        self.weights: list[Any] = []
        self.slow: list[Any] = []  # tensors where the weights live (a GPU's memory): no copies to the host

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.weights = [v for v in self.model.weights if "float" in str(v.dtype)]
        self.slow = [keras.ops.copy(keras.ops.convert_to_tensor(v)) for v in self.weights]
        self.step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step += 1
        if self.step % self.every == 0:
            self.sync(lookahead_decay(self.step, self.total, self.every))
        elif self.step == self.total:  # the last step: the model ends on the slow weights
            self.sync(1.0)

    def sync(self, decay: float) -> None:
        """slow += (1 - decay) * (fast - slow); fast = slow."""
        for i, (variable, slow) in enumerate(zip(self.weights, self.slow)):
            self.slow[i] = slow + (1.0 - decay) * (keras.ops.convert_to_tensor(variable) - slow)
            variable.assign(self.slow[i])


class FreezeAfter(keras.callbacks.Callback):
    """Stop training layer `name` from epoch `epochs` on (0-based: it trains epochs 0..epochs-1), as the paper
    freezes its whitening bias after 3 epochs. The step is traced again with the smaller variable list; the
    optimizer keeps the frozen variable's slot, so checkpoints keep their shape."""

    def __init__(self, name: str, epochs: int) -> None:
        super().__init__()
        self.name, self.epochs = name, int(epochs)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        layer = self.model.get_layer(self.name)
        if epoch >= self.epochs and layer.trainable:
            layer.trainable = False
            self.model.make_train_function(force=True)


def recipe_callbacks(spec: Any, steps_per_epoch: int) -> list[keras.callbacks.Callback]:
    """The callbacks a run's spec asks for (lookahead, the whitening bias's freeze), in that order."""
    callbacks: list[keras.callbacks.Callback] = []
    if getattr(spec, "lookahead_every", 0):
        callbacks.append(Lookahead(spec.lookahead_every, spec.epochs * steps_per_epoch))
    if getattr(spec, "whiten_bias_epochs", 0):
        callbacks.append(FreezeAfter(WHITEN_BIAS, spec.whiten_bias_epochs))
    return callbacks
