"""FinetuneSpec: a transfer-learning run (an ImageNet backbone with a new head on CIFAR at 96x96),
with the spec protocol of `workbench.specs.base`, so the job queue, the store and the UI treat it like a
RunSpec. The run's kind in the store is "finetune"; it trains through the same loop (`workbench.training.fit`).

Backbones (`BACKBONES`) and how their `preprocess_input` is expressed inside the model with built-in
layers, so a `.keras` checkpoint loads with safe_mode=True (the pipeline delivers 0..255 RGB pixels):
  caffe  vgg19                          RGB->BGR and minus the ImageNet BGR means: a frozen 1x1 Conv2D
                                        ("preprocess_caffe": permutation kernel, bias -[103.939, 116.779, 123.68])
  tf     inception_v3, resnet50_v2,     x / 127.5 - 1: Rescaling(1/127.5, offset=-1)
         mobilenet_v2
  model  efficientnet_v2_b0,            the Keras model has its own Rescaling/Normalization layers
         convnext_tiny                  (include_preprocessing=True): nothing added
  hub    hub:<handle or SavedModel>     Rescaling(1/255): TF Hub's image convention is RGB in [0, 1]
"""

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from workbench.constants import RunKind
from workbench.errors import UserError
from workbench.specs.base import SHARED_HELP, Spec, check

HUB_PREFIX = "hub:"
WEIGHT_CHOICES = ("imagenet", "none")


class Backbone(NamedTuple):
    application: str  # keras.applications.<application>(include_top=False, weights=..., input_shape=...)
    module: str  # keras.applications.<module>, home of the backbone's own preprocess_input
    min_size: int
    default_unfreeze: object  # a layer name, or an index into the backbone's layers
    notes: str
    preprocessing: str  # caffe | tf | model (see the module docstring)

    # Looked up when used: importing keras.applications costs seconds, and the CLI's `runs` or
    # `--help` need only the names above.
    @property
    def constructor(self) -> Callable[..., Any]:
        from keras import applications  # noqa: PLC0415 - Keras: seconds to import (see above)

        return getattr(applications, self.application)

    @property
    def preprocess_input(self) -> Callable[..., Any]:
        """The backbone's own function; the model uses `preprocessing` instead (tests compare them)."""
        from keras import applications  # noqa: PLC0415 - Keras: seconds to import (see above)

        return getattr(applications, self.module).preprocess_input


BACKBONES = {
    "vgg19": Backbone(
        "VGG19", "vgg19", 32, "block5_conv1", "20M params; unfreezes the last conv block (block5) by default", "caffe"
    ),
    "inception_v3": Backbone(
        "InceptionV3", "inception_v3", 75, 249, "22M params; 249 = the top two inception blocks (mixed9, mixed10)", "tf"
    ),
    "resnet50_v2": Backbone(
        "ResNet50V2", "resnet_v2", 32, "conv5_block1_preact_bn", "24M params; unfreezes stage conv5", "tf"
    ),
    "mobilenet_v2": Backbone(
        "MobileNetV2",
        "mobilenet_v2",
        32,
        "block_16_expand",
        "2.3M params; unfreezes the last inverted-residual block",
        "tf",
    ),
    "efficientnet_v2_b0": Backbone(
        "EfficientNetV2B0", "efficientnet_v2", 32, "block6a_expand_conv", "5.9M params; unfreezes stage 6", "model"
    ),
    "convnext_tiny": Backbone(
        "ConvNeXtTiny",
        "convnext",
        32,
        "convnext_tiny_downsampling_block_2",
        "28M params; unfreezes the last stage",
        "model",
    ),
}
HUB_MIN_SIZE = 32

HELP = {
    **SHARED_HELP,
    "backbone": f"{', '.join(BACKBONES)}, or hub:<TF Hub handle or local SavedModel folder>",
    "weights": "imagenet, none (random init), or a path to a weights file for the backbone (.weights.h5/.h5/.keras)",
    "image_size": "the size CIFAR images are resized to, on the fly (InceptionV3 needs >= 75)",
    "head_epochs": "phase 1: epochs training the new head on the frozen backbone (RMSprop)",
    "finetune_epochs": "phase 2: epochs fine-tuning from --unfreeze-from on (SGD + Nesterov 0.9)",
    "unfreeze_from": "backbone layer index phase 2 unfreezes from (-1: the backbone's default); BatchNorm stays frozen",
    "head_lr": "phase-1 RMSprop learning rate",
    "finetune_lr": "phase-2 SGD learning rate",
    "dense_units": "units of the head's hidden Dense layer",
    "dropout": "dropout rate before the logits (0: none)",
    "augment": SHARED_HELP["augment"] + " (applied at 32x32, before the resize)",
}


@dataclass
class FinetuneSpec(Spec):
    """Fine-tune an ImageNet backbone on CIFAR: phase 1 trains a new head on the frozen backbone,
    phase 2 unfreezes its top layers; one run, one continuous epoch numbering."""

    kind: ClassVar[str] = RunKind.FINETUNE
    label: ClassVar[str] = "fine-tune"
    command: ClassVar[str] = "finetune"
    help: ClassVar[dict] = HELP
    flag_names: ClassVar[dict] = {"data_path": "--data", "image_size": "--size"}
    derived: ClassVar[tuple] = ("epochs",)  # head_epochs + finetune_epochs, for readers of the store

    backbone: str = "inception_v3"
    weights: str = "imagenet"
    image_size: int = 96
    head_epochs: int = 5
    finetune_epochs: int = 20
    unfreeze_from: int = -1
    head_lr: float = 1e-3
    finetune_lr: float = 1e-4
    dense_units: int = 1024
    dropout: float = 0.0
    batch_size: int = 64
    augment: tuple = ("flip_crop",)  # applied at 32x32, before the resize
    gpus: int = -1
    precision: str = "float32"
    seed: int = 0
    dataset: str = "cifar10"
    data_path: str = ""
    dataset_options: dict = field(default_factory=dict)
    val_size: int = 0
    split_seed: int = 0
    train_subset: int = 0
    name: str = ""

    @property
    def epochs(self) -> int:
        """Both phases together: the run's epochs in the store and the UI's progress."""
        return self.head_epochs + self.finetune_epochs

    @property
    def is_hub(self) -> bool:
        return self.backbone.startswith(HUB_PREFIX)

    @property
    def hub_handle(self) -> str:
        return self.backbone[len(HUB_PREFIX) :].strip()

    def _normalize_names(self) -> "FinetuneSpec":
        """Backbone names and weight keywords are case-insensitive; empty weights mean imagenet."""
        backbone = self.backbone if self.backbone.startswith(HUB_PREFIX) else self.backbone.lower()
        weights = self.weights.lower() if self.weights.lower() in WEIGHT_CHOICES + ("",) else self.weights
        return dataclasses.replace(self, backbone=backbone, weights=weights or "imagenet")

    def default_name(self) -> str:
        backbone = f"hub:{Path(self.hub_handle.rstrip('/')).name}" if self.is_hub else self.backbone
        if self.is_hub:
            weights = ""
        elif self.weights in ("imagenet", "none"):
            weights = "-imagenet" if self.weights == "imagenet" else "-scratch"
        else:
            weights = f"-{Path(self.weights).stem}"
        return f"{backbone}{weights}-{self.image_size}px-{self.head_epochs}+{self.finetune_epochs}ep"

    # --- validation -----------------------------------------------------------------------------

    def check_own(self) -> None:
        """The fine-tune settings, without building anything. Loading the weights, resolving a hub handle,
        the unfreeze index's range and the batch size against the data are checked in the job's process
        (`workbench.training`), which fails the run with the reason."""
        if self.is_hub:
            check(bool(self.hub_handle), "hub: needs a handle or a SavedModel folder, e.g. hub:/models/my_backbone")
            check(self.weights == "imagenet", "a hub backbone brings its own weights: leave --weights at its default")
            min_size, label = HUB_MIN_SIZE, "a hub backbone"
        elif self.backbone in BACKBONES:
            min_size, label = BACKBONES[self.backbone].min_size, self.backbone
        else:
            raise UserError(
                f"unknown backbone {self.backbone!r}; choose one of: {', '.join(BACKBONES)}, "
                "or hub:<TF Hub handle or local SavedModel folder>"
            )
        check(
            self.image_size >= min_size,
            f"image size {self.image_size} is below {label}'s minimum of "
            f"{min_size} pixels; use --size {min_size} or more (the default is 96)",
        )
        check(self.image_size <= 512, "image size must be at most 512 (CIFAR images are 32x32; 96 is the default)")
        if self.weights not in WEIGHT_CHOICES:
            path = Path(self.weights).expanduser()
            check(
                path.is_file(),
                f"weights file {self.weights} does not exist; give imagenet, none, "
                "or the path of a weights file (.weights.h5, .h5 or .keras)",
            )
            check(os.access(path, os.R_OK), f"weights file {self.weights} cannot be read")
        check(self.head_epochs >= 0 and self.finetune_epochs >= 0, "head and fine-tune epochs must be >= 0")
        check(self.epochs >= 1, "head epochs and fine-tune epochs are both 0: nothing to train")
        check(self.unfreeze_from >= -1, "unfreeze-from must be a backbone layer index, or -1 for the default")
        check(
            self.head_lr > 0 and self.finetune_lr > 0,
            "learning rates must be > 0 (defaults: head 1e-3, fine-tune 1e-4)",
        )
        check(self.dense_units >= 1, "dense units must be at least 1 (default 1024)")
        check(0 <= self.dropout < 1, "dropout must be in [0, 1) (0: none)")
