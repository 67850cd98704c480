"""FinetuneSpec: a transfer-learning run (an ImageNet backbone with a new head on CIFAR at 96x96),
with the same protocol as RunSpec (to_dict/from_dict/normalized/replace/validate/display_name/to_cli)
so the job queue, the store and the UI treat both alike. The run's kind in the store is "finetune".

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
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from workbench.errors import UserError
from workbench.specs.run import RunSpec, _check

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
    def constructor(self):
        from keras import applications

        return getattr(applications, self.application)

    @property
    def preprocess_input(self):
        """The backbone's own function; the model uses `preprocessing` instead (tests compare them)."""
        from keras import applications

        return getattr(applications, self.module).preprocess_input


BACKBONES = {
    "vgg19": Backbone("VGG19", "vgg19", 32, "block5_conv1",
                      "20M params; unfreezes the last conv block (block5) by default", "caffe"),
    "inception_v3": Backbone("InceptionV3", "inception_v3", 75, 249,
                             "22M params; 249 = the top two inception blocks (mixed9, mixed10)", "tf"),
    "resnet50_v2": Backbone("ResNet50V2", "resnet_v2", 32,
                            "conv5_block1_preact_bn", "24M params; unfreezes stage conv5", "tf"),
    "mobilenet_v2": Backbone("MobileNetV2", "mobilenet_v2", 32,
                             "block_16_expand", "2.3M params; unfreezes the last inverted-residual block", "tf"),
    "efficientnet_v2_b0": Backbone("EfficientNetV2B0", "efficientnet_v2",
                                   32, "block6a_expand_conv", "5.9M params; unfreezes stage 6", "model"),
    "convnext_tiny": Backbone("ConvNeXtTiny", "convnext", 32,
                              "convnext_tiny_downsampling_block_2", "28M params; unfreezes the last stage", "model"),
}
HUB_MIN_SIZE = 32

HELP = {
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
}
FLAG_NAMES = {"data_path": "--data", "image_size": "--size"}


@dataclass
class FinetuneSpec:
    """Fine-tune an ImageNet backbone on CIFAR: phase 1 trains a new head on the frozen backbone,
    phase 2 unfreezes its top layers; one run, one continuous epoch numbering."""

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
        return self.backbone[len(HUB_PREFIX):].strip()

    # --- conversion ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["augment"] = list(self.augment)
        data["epochs"] = self.epochs
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "FinetuneSpec":
        data = {k: v for k, v in data.items() if k != "epochs"}  # derived: head_epochs + finetune_epochs
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown fine-tune setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data).normalized()

    def normalized(self) -> "FinetuneSpec":
        """Coerce loose types as RunSpec does; backbone names and weight keywords are case-insensitive."""
        spec = RunSpec.normalized(self)
        backbone = spec.backbone if spec.backbone.startswith(HUB_PREFIX) else spec.backbone.lower()
        weights = spec.weights.lower() if spec.weights.lower() in WEIGHT_CHOICES + ("",) else spec.weights
        return dataclasses.replace(spec, backbone=backbone, weights=weights or "imagenet")

    def replace(self, **changes) -> "FinetuneSpec":
        return dataclasses.replace(self, **changes).normalized()

    def display_name(self) -> str:
        if self.name:
            return self.name
        backbone = f"hub:{Path(self.hub_handle.rstrip('/')).name}" if self.is_hub else self.backbone
        weights = "" if self.is_hub else f"-{'imagenet' if self.weights == 'imagenet' else 'scratch' if self.weights == 'none' else Path(self.weights).stem}"
        return f"{backbone}{weights}-{self.image_size}px-{self.head_epochs}+{self.finetune_epochs}ep"

    def to_cli(self) -> str:
        """The equivalent `python -m workbench finetune` command (settings that differ from defaults)."""
        return shlex.join(["python", "-m", "workbench", "finetune", *finetune_spec_to_args(self)])

    # --- validation -----------------------------------------------------------------------------

    def validate(self, *, available_gpus: int = 0) -> "FinetuneSpec":
        """Check every field without building anything; raise UserError saying what is allowed.

        Loading the weights, resolving a hub handle, the unfreeze index's range and the batch size
        against the data are checked by `workbench.training.backbones.check_buildable` (costs seconds)."""
        spec = self.normalized()
        if spec.is_hub:
            _check(bool(spec.hub_handle), "hub: needs a handle or a SavedModel folder, e.g. hub:/models/my_backbone")
            _check(spec.weights == "imagenet", "a hub backbone brings its own weights: leave --weights at its default")
            min_size, label = HUB_MIN_SIZE, "a hub backbone"
        elif spec.backbone in BACKBONES:
            min_size, label = BACKBONES[spec.backbone].min_size, spec.backbone
        else:
            raise UserError(f"unknown backbone {spec.backbone!r}; choose one of: {', '.join(BACKBONES)}, "
                            "or hub:<TF Hub handle or local SavedModel folder>")
        _check(spec.image_size >= min_size, f"image size {spec.image_size} is below {label}'s minimum of "
               f"{min_size} pixels; use --size {min_size} or more (the default is 96)")
        _check(spec.image_size <= 512, "image size must be at most 512 (CIFAR images are 32x32; 96 is the default)")
        if spec.weights not in WEIGHT_CHOICES:
            path = Path(spec.weights).expanduser()
            _check(path.is_file(), f"weights file {spec.weights} does not exist; give imagenet, none, "
                   "or the path of a weights file (.weights.h5, .h5 or .keras)")
            _check(os.access(path, os.R_OK), f"weights file {spec.weights} cannot be read")
        _check(spec.head_epochs >= 0 and spec.finetune_epochs >= 0, "head and fine-tune epochs must be >= 0")
        _check(spec.epochs >= 1, "head epochs and fine-tune epochs are both 0: nothing to train")
        _check(spec.unfreeze_from >= -1, "unfreeze-from must be a backbone layer index, or -1 for the default")
        _check(spec.head_lr > 0 and spec.finetune_lr > 0, "learning rates must be > 0 (defaults: head 1e-3, fine-tune 1e-4)")
        _check(spec.dense_units >= 1, "dense units must be at least 1 (default 1024)")
        _check(0 <= spec.dropout < 1, "dropout must be in [0, 1) (0: none)")
        # Shared settings (batch size, augmentations, precision, GPUs, dataset and data path): RunSpec's checks.
        RunSpec(epochs=spec.epochs, batch_size=spec.batch_size, augment=spec.augment, gpus=spec.gpus,
                precision=spec.precision, seed=spec.seed, dataset=spec.dataset, data_path=spec.data_path,
                dataset_options=spec.dataset_options, val_size=spec.val_size, split_seed=spec.split_seed,
                train_subset=spec.train_subset).validate(available_gpus=available_gpus)
        return spec


# --- command line -------------------------------------------------------------------------------

def add_finetune_arguments(parser):
    """One flag per FinetuneSpec field (default None: we know which ones the user gave), e.g.
    --backbone inception_v3 --size 96 --head-epochs 5 --finetune-epochs 20 --unfreeze-from 249 --weights PATH"""
    from workbench.specs.flags import HELP as RUN_HELP
    from workbench.specs.flags import add_spec_arguments

    add_spec_arguments(parser, FinetuneSpec, {**RUN_HELP, **HELP}, FLAG_NAMES)


def finetune_spec_from_args(namespace, base: FinetuneSpec = None) -> FinetuneSpec:
    """A FinetuneSpec from parsed flags, on top of `base` (or the defaults)."""
    from workbench.specs.flags import spec_from_args

    return spec_from_args(namespace, base, FinetuneSpec, FLAG_NAMES)


def finetune_spec_to_args(spec: FinetuneSpec) -> list:
    """The flags that reproduce `spec` (only those that differ from the defaults)."""
    from workbench.specs.flags import spec_to_args

    return spec_to_args(spec, FLAG_NAMES)
