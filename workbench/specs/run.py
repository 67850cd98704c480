"""RunSpec: a model from the zoo trained from scratch. Validated once, stored as JSON with the run,
printable as the equivalent `python -m workbench train` command (the protocol is `workbench.specs.base`).

Specs are data: presets list them, the UI fills one from its form, the CLI from its flags.
"""

from dataclasses import dataclass, field
from typing import ClassVar

from workbench.constants import RunKind
from workbench.errors import UserError, choose
from workbench.specs.base import PRECISIONS, SHARED_HELP, Spec, check
from workbench.specs.catalogue import loss_params, schedule_params

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
# airbench builder option -> the run setting that gives it
AIRBENCH_SETTINGS = {
    "dirac": "dirac_init",
    "bn_bias_lr": "bn_bias_lr",
    "whiten_bias": "whiten_bias_epochs",
    "any_size": "low_res_epochs",
}

HELP = {
    **SHARED_HELP,
    "model": "architecture from the model zoo (python -m workbench models lists them)",
    "model_kwargs": "the model family's options as key=value,... (e.g. depth=16,widen_factor=4)",
    "loss": "cross_entropy, focal or label_smoothing",
    "loss_params": "loss parameters as key=value,... (focal: gamma=2,alpha=0.25; label_smoothing=0.1)",
    "augment_params": "augmentation parameters as key=value,... (cutout_size=16, pad=4, mixup_alpha=0.2)",
    "schedule": "learning-rate schedule: step, cosine, htd, constant or linear (warm-up then linear decay)",
    "schedule_params": "schedule parameters as key=value,... (step: milestones=[0.3,0.6,0.8],gamma=0.2)",
    "warmup_epochs": "linear learning-rate warm-up, in epochs",
    "optimizer": f"one of {', '.join(OPTIMIZERS)} (sgd uses Nesterov momentum)",
    "learning_rate": "peak learning rate",
    "momentum": "SGD/RMSprop momentum",
    "weight_decay": "weight decay (L2 on conv/dense kernels; decoupled for adamw)",
    "ema_momentum": "keep an EMA of the weights with this momentum (e.g. 0.99), used for the final evaluation; 0: off",
    "dirac_init": "identity (Dirac) init of the 3x3 convs' first channels (airbench family; cifar10-airbench: on)",
    "bn_bias_lr": "learning-rate multiplier of BatchNorm biases, by reparameterisation (airbench family; "
    "cifar10-airbench: 64); 1: off",
    "whiten_bias_epochs": "train a bias on the whitening layer for the first N epochs, then freeze it "
    "(airbench family; cifar10-airbench: 3); 0: no bias",
    "lookahead_every": "lookahead: every N steps the slow weights move toward the model's and replace them "
    "(cifar10-airbench: 5); 0: off",
    "low_res_epochs": "progressive resolution: train the first N epochs on images downscaled to 24 px "
    "(airbench family); 0: off",
    "epochs": "number of epochs",
    "xla": "compile the training step with XLA",
    "name": "run name (default: model-loss-augment-epochs)",
    "tensorboard": "write TensorBoard event files as it trains, to <store>-tensorboard/ beside the store",
    "snapshots": "snapshot ensemble: M cosine cycles with warm restarts (needs --schedule cosine; epochs a "
    "multiple of M), each cycle's model stored as a run 'run N · snapshot i'; 0: off",
    "snapshot_checkpoints": "keep each snapshot's checkpoint too (for the Predict tab and export)",
    "average_last": "weight averaging (SWA): average the weights of the last K epochs, recompute BatchNorm's "
    "statistics in one pass over the training images, store it as a run 'run N · averaged'; 0: off",
    "average_snapshots": "weight averaging (SWA) over the snapshots instead: the mean of the M snapshots' weights "
    "(each cycle's end), BatchNorm recomputed, stored as 'run N · averaged' (needs --snapshots; not with "
    "--average-last)",
}


@dataclass
class RunSpec(Spec):
    """A training run. Defaults are the classic CIFAR recipe (SGD + Nesterov 0.9, lr 0.1, weight decay
    5e-4, batch 128, step schedule x0.2 at 30/60/80% of 200 epochs, flip + crop)."""

    kind: ClassVar[str] = RunKind.SCRATCH
    label: ClassVar[str] = "run"
    command: ClassVar[str] = "train"
    help: ClassVar[dict] = HELP

    model: str = "resnet20"
    model_kwargs: dict = field(default_factory=dict)
    loss: str = "cross_entropy"
    loss_params: dict = field(default_factory=dict)
    augment: tuple = ("flip_crop",)
    augment_params: dict = field(default_factory=dict)
    schedule: str = "step"
    schedule_params: dict = field(default_factory=dict)
    warmup_epochs: float = 0.0
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    ema_momentum: float = 0.0  # > 0: Keras' optimizer EMA (use_ema), the average evaluated at the end
    # cifar10-airbench's recipe (workbench.training.recipe, models.airbench); all off by default
    dirac_init: bool = False
    bn_bias_lr: float = 1.0
    whiten_bias_epochs: int = 0
    lookahead_every: int = 0
    low_res_epochs: int = 0
    epochs: int = 200
    batch_size: int = 128
    gpus: int = -1  # -1: one GPU when there is one, else the CPU; 0: the CPU; N: N GPUs (MirroredStrategy)
    precision: str = "float32"
    xla: bool = False
    seed: int = 0
    dataset: str = "cifar10"
    data_path: str = ""
    dataset_options: dict = field(default_factory=dict)  # synthetic only: n_train, n_test, num_classes, seed
    val_size: int = 0  # 0: the default (5,000 for CIFAR, a tenth of smaller sets)
    split_seed: int = 0
    train_subset: int = 0  # 0: the whole training split; N: a seeded random N of it (quick looks, tests)
    name: str = ""
    tensorboard: bool = False  # live TensorBoard events (workbench.training.tensorboard); not a setting of the result
    snapshots: int = (
        0  # M >= 2: cyclic cosine schedule, each cycle's end stored as a run (workbench.training.snapshots)
    )
    snapshot_checkpoints: bool = False
    average_last: int = 0  # K >= 2: SWA over the last K epochs, stored as the run's averaged result
    average_snapshots: bool = False  # SWA over the M snapshots' weights instead (cyclic SWA), the same result

    def default_name(self) -> str:
        augment = "+".join(self.augment) or "noaug"
        options = ",".join(f"{k}={v}" for k, v in sorted(self.model_kwargs.items()))
        model = f"{self.model}({options})" if options else self.model
        return f"{model}-{self.loss}-{augment}-{self.epochs}ep"

    def check_own(self) -> None:
        """Names, numbers and the model's options (by the family's own checkers, without building it;
        rules that tie options together are checked when the job builds the model)."""
        from models import check_options, list_models, model_info  # noqa: PLC0415 - Keras: the zoo imports it

        choose("model", self.model, list_models())
        info = model_info(self.model)
        options = info["options"]
        for option, setting in ({"weight_decay": "weight_decay"} | AIRBENCH_SETTINGS).items():
            if option in self.model_kwargs:
                raise UserError(
                    f"set {option} with the run's {setting} setting (--{setting.replace('_', '-')}), "
                    "not as a model option"
                )
        self.check_recipe(info["family"])
        unknown = sorted(set(self.model_kwargs) - set(options))
        if unknown:
            raise UserError(
                f"model {self.model!r} has no option {', '.join(unknown)}; "
                f"it takes: {', '.join(sorted(set(options) - {'weight_decay'})) or 'none'}"
            )
        check_options(self.model, **self.model_kwargs)
        loss_params(self.loss, self.loss_params)
        schedule_params(self.schedule, self.schedule_params)
        choose("optimizer", self.optimizer, OPTIMIZERS)
        check(self.learning_rate > 0, "learning rate must be > 0 (classic SGD: 0.1)")
        check(0 <= self.momentum < 1, "momentum must be in [0, 1) (classic: 0.9)")
        check(0 <= self.weight_decay < 1, "weight decay must be in [0, 1) (classic: 5e-4)")
        check(0 <= self.ema_momentum < 1, "EMA momentum must be in [0, 1) (0: no weight average; e.g. 0.99)")
        check(0 <= self.warmup_epochs < max(self.epochs, 1), f"warm-up epochs must be in [0, {self.epochs})")
        self.check_snapshots()

    def check_snapshots(self) -> None:
        """Snapshots (M cycles) and weight averaging (the last K epochs) fit the run's epochs and schedule."""
        m, k = self.snapshots, self.average_last
        check(m == 0 or m >= 2, f"snapshots must be 0 (off) or at least 2 cycles, got {m}")
        if m:
            check(
                self.schedule == "cosine",
                f"snapshots restart a cosine schedule: set the schedule to cosine (got {self.schedule!r})",
            )
            check(
                self.epochs % m == 0,
                f"snapshots: {self.epochs} epochs do not split into {m} equal cycles; "
                f"use a multiple of {m} epochs (e.g. {m * max(1, round(self.epochs / m))})",
            )
            check(self.warmup_epochs == 0, "snapshots: warm-up is not supported with cyclic cosine; set it to 0")
        check(self.snapshot_checkpoints is False or m > 0, "snapshot checkpoints need snapshots (M >= 2)")
        check(k == 0 or k >= 2, f"average-last must be 0 (off) or at least 2 epochs, got {k}")
        check(k <= self.epochs, f"average-last {k} is more than the run's {self.epochs} epochs")
        if self.average_snapshots:
            check(m > 0, "average-snapshots averages the snapshots' weights: set snapshots (M >= 2) too")
            check(
                k == 0,
                "a run stores one averaged result: use --average-snapshots (the M snapshots) or --average-last K "
                "(the last K epochs), not both",
            )

    def averaged_epochs(self) -> tuple[int, ...]:
        """The epochs (1-based) whose end-of-epoch weights the run's averaged result is the mean of: the last
        `average_last`, or each cycle's last with `average_snapshots`; () when it averages nothing."""
        if self.average_snapshots and self.snapshots:
            every = self.epochs // self.snapshots
            return tuple(range(every, self.epochs + 1, every))
        if self.average_last:
            return tuple(range(self.epochs - self.average_last + 1, self.epochs + 1))
        return ()

    def check_recipe(self, family: str) -> None:
        """cifar10-airbench's settings: numbers in range, and the model's own ones on an airbench model only."""
        check(self.bn_bias_lr > 0, "BatchNorm bias learning-rate multiplier must be > 0 (1: off; cifar10-airbench: 64)")
        check(self.whiten_bias_epochs >= 0, "whitening bias epochs must be >= 0 (0: no bias; cifar10-airbench: 3)")
        check(self.lookahead_every >= 0, "lookahead every must be >= 0 steps (0: off; cifar10-airbench: 5)")
        check(
            0 <= self.low_res_epochs < max(self.epochs, 1),
            f"low-resolution epochs must be in [0, {self.epochs}) (0: off): the last epochs train at full size",
        )
        used = [
            name
            for name, on in (
                ("dirac_init", self.dirac_init),
                ("bn_bias_lr", self.bn_bias_lr != 1),
                ("whiten_bias_epochs", self.whiten_bias_epochs > 0),
                ("low_res_epochs", self.low_res_epochs > 0),
            )
            if on
        ]
        if used and family != "airbench":
            raise UserError(
                f"{', '.join(used)} apply to the airbench family only (model {self.model!r} is {family}); "
                "pick airbench_cpu or airbench94, or turn them off"
            )

    def airbench_options(self) -> dict:
        """The airbench builder's options this run's settings give (`models.airbench`)."""
        return {
            "dirac": self.dirac_init,
            "bn_bias_lr": self.bn_bias_lr,
            "whiten_bias": self.whiten_bias_epochs > 0,
            "any_size": self.low_res_epochs > 0,
        }


__all__ = ["HELP", "OPTIMIZERS", "PRECISIONS", "RunSpec"]
