"""The model zoo: CIFAR classifiers built as functional Keras models from registered families.

    from models import create_model, list_models, model_info
    model = create_model("resnet56", num_classes=10, weight_decay=1e-4)

Families (one builder each, configured by keyword): airbench, lenet, nin, vgg, resnet (pre-activation, SE
optional), wide_resnet, resnext (SE optional), densenet_bc. Named variants such as `resnet56` or
`wrn_28_10` are registered configurations of those builders. Every model outputs float32 logits.
`python -m models` prints every model's parameter count next to its paper's figure.
"""

import math

from . import airbench, densenet, lenet, nin, resnet, resnext, vgg, wide_resnet  # noqa: F401  (registers the models)
from .registry import (
    check_options,
    create_model,
    init_from_data,
    list_families,
    list_models,
    model_info,
    needs_data_init,
    paper_match,
)

__all__ = [
    "check_options",
    "count_params",
    "create_model",
    "init_from_data",
    "list_families",
    "list_models",
    "model_info",
    "needs_data_init",
    "paper_match",
]


def count_params(model) -> int:
    """Trainable parameters of `model`: what the papers count (BN moving statistics excluded)."""
    return sum(math.prod(int(d) for d in w.shape) for w in model.trainable_weights)
