"""Multiply-adds per image, in millions, of every model in the zoo (32x32 CIFAR input) and of each
fine-tune backbone at 224x224 (a fine-tune scales it by its input size squared): what a rough time
estimate scales by (`workbench.jobs.estimate`). Counted from the built models (Conv2D, depthwise,
separable and Dense layers; grouped convolutions by their kernels), not typed in:

    python -m workbench.jobs.costs        # prints both tables again (builds every model: minutes)

tests/test_estimate.py checks that every registered model is listed and recounts a few.
"""

from collections.abc import Iterable
from typing import Any

from workbench.specs.finetune import BACKBONES

MODEL_MMACS = {
    "airbench94": 118.1,
    "airbench_cpu": 33.1,
    "densenet_bc_100_12": 287.9,
    "densenet_bc_160_24": 2495.6,
    "densenet_bc_190_40": 9301.9,
    "densenet_bc_250_24": 5418.8,
    "lenet": 0.7,
    "nin": 222.5,
    "resnet110": 252.9,
    "resnet20": 40.6,
    "resnet32": 68.9,
    "resnet44": 97.2,
    "resnet56": 125.5,
    "resnext29_16x64d": 10688.9,
    "resnext29_4x64d": 2736.5,
    "resnext29_8x64d": 5387.3,
    "se_resnet56": 125.5,
    "se_resnext29_16x64d": 10689.4,
    "se_resnext29_4x64d": 2737.0,
    "vgg11_bn": 152.8,
    "vgg16_bn": 313.2,
    "vgg19_bn": 398.1,
    "wrn_16_8": 1548.1,
    "wrn_28_10": 5243.3,
    "wrn_40_4": 1298.6,
}
# The zoo's family of each model (`models.model_info(name)["family"]`): what the estimate's constants are
# measured per (`workbench/jobs/speeds.json`); tests/test_estimate.py checks it against the registry.
MODEL_FAMILY = {
    **dict.fromkeys(("airbench94", "airbench_cpu"), "airbench"),
    **dict.fromkeys(
        ("densenet_bc_100_12", "densenet_bc_160_24", "densenet_bc_190_40", "densenet_bc_250_24"), "densenet_bc"
    ),
    "lenet": "lenet",
    "nin": "nin",
    **dict.fromkeys(("resnet110", "resnet20", "resnet32", "resnet44", "resnet56", "se_resnet56"), "resnet"),
    **dict.fromkeys(
        ("resnext29_16x64d", "resnext29_4x64d", "resnext29_8x64d", "se_resnext29_16x64d", "se_resnext29_4x64d"),
        "resnext",
    ),
    **dict.fromkeys(("vgg11_bn", "vgg16_bn", "vgg19_bn"), "vgg"),
    **dict.fromkeys(("wrn_16_8", "wrn_28_10", "wrn_40_4"), "wide_resnet"),
}
BACKBONE_MMACS = {  # at 224x224, without the head (a few thousand multiply-adds)
    "vgg19": 19508.4,
    "inception_v3": 2835.9,
    "resnet50_v2": 3480.2,
    "mobilenet_v2": 299.5,
    "efficientnet_v2_b0": 716.8,
    "convnext_tiny": 4454.8,
}


def count_mmacs(model: Any) -> float:
    """Multiply-adds per image, in millions, of a built Keras model (nested models counted inside)."""
    total: float = 0
    for layer in model.layers:
        if hasattr(layer, "layers"):
            total += count_mmacs(layer) * 1e6
            continue
        kind = type(layer).__name__
        if kind not in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense"):
            continue
        out = layer.output.shape
        positions = 1
        for size in out[1:-1]:
            positions *= size
        if kind == "SeparableConv2D":
            depthwise, pointwise = layer.depthwise_kernel.shape, layer.pointwise_kernel.shape
            total += positions * (_product(depthwise) + pointwise[-2] * pointwise[-1])
        else:  # a kernel's size is the multiply-adds of one output position (of all its channels)
            total += positions * _product(layer.kernel.shape)
    return total / 1e6


def _product(shape: Iterable[int]) -> int:
    result = 1
    for size in shape:
        result *= int(size)
    return result


def main() -> None:
    import keras  # noqa: PLC0415 - Keras: seconds to import, only counting needs it (estimate reads the tables)

    from models import create_model, list_models  # noqa: PLC0415 - Keras: the zoo imports it

    for name in list_models():
        print(f'    "{name}": {count_mmacs(create_model(name)):.1f},', flush=True)
        keras.backend.clear_session()
    for name, backbone in BACKBONES.items():
        model = backbone.constructor(include_top=False, weights=None, input_shape=(224, 224, 3))
        print(f'    "{name}": {count_mmacs(model):.1f},', flush=True)
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
