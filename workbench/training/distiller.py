"""Knowledge distillation as a Keras model with its own loss (as Keras' knowledge-distillation example
does it, with a `compute_loss` of its own), trained by the one loop (`workbench.training.fit`) through
`DistillRunner` (`workbench.training.runners`).

`Distiller` is the student's own graph (a Functional model: the same layers, names and weights as the
zoo model), so its checkpoint is the student: the Predict tab, export and the Ensemble tab use it like any
run's, and it loads with Keras' safe_mode (the class is registered as "workbench>Distiller"). What it adds
is the loss while training:

    alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * compiled loss on the labels + regularisation

The teacher's distribution comes either from the batch's labels (cached mode: the training pipeline
appends the stored teacher probabilities to each one-hot label row) or from `Teacher`, called on the very
batch the student sees (online mode). Validation and evaluation use the compiled loss only, as any run.
"""

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

from workbench.errors import UserError

TEACHER_RECORD = "teacher.json"  # the run's teacher as it started: members, weights, checkpoint hashes
TEACHER_TARGETS = "teacher_targets.npy"  # cached mode: the teacher's probabilities at T per training image


def distillation_loss(teacher_probs: Any, student_logits: Any, temperature: float) -> Any:
    """T^2 * KL(teacher_T || softmax(student / T)), averaged over the batch (Keras' KLDivergence, whose
    reduction also handles a distribution strategy's replicas)."""
    student = ops.softmax(ops.cast(student_logits, "float32") / temperature, axis=-1)
    return temperature**2 * keras.losses.KLDivergence()(teacher_probs, student)


@keras.saving.register_keras_serializable(package="workbench")
class Distiller(keras.Model):
    """The student's graph with a distillation loss; see the module docstring. Built as
    `as_distiller(student)`; `teach` sets the teacher."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Set with object.__setattr__: Keras tracks models assigned as attributes, and the teacher's
        # weights must stay out of the student's checkpoint.
        object.__setattr__(self, "teacher", None)
        self.temperature, self.alpha, self.cached = 1.0, 0.0, False

    def teach(self, teacher: "Teacher | None", *, temperature: float, alpha: float, cached: bool) -> None:
        object.__setattr__(self, "teacher", teacher)
        self.temperature, self.alpha, self.cached = float(temperature), float(alpha), cached

    def _split(self, y: Any) -> tuple[Any, Any]:
        """(one-hot labels, the teacher's probabilities or None) of a batch's targets."""
        classes = self.outputs[0].shape[-1]
        if self.cached and y is not None and y.shape[-1] == 2 * classes:
            return y[..., :classes], y[..., classes:]
        return y, None

    def compute_loss(
        self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None, training: bool = True
    ) -> Any:
        labels, teacher_probs = self._split(y)
        # The run's loss on the labels plus the layers' regularisation, as every run computes it.
        base = super().compute_loss(x, labels, y_pred, sample_weight, training)
        if not training or self.alpha == 0:
            return base
        if teacher_probs is None:
            if self.teacher is None:
                raise RuntimeError("a Distiller trains with cached targets or a teacher (call teach first)")
            teacher_probs = self.teacher.probs(x, self.temperature)
        soft = distillation_loss(ops.stop_gradient(teacher_probs), y_pred, self.temperature)
        hard = self.loss(labels, y_pred)  # the compiled loss alone: base minus regularisation
        return base + self.alpha * (soft - hard)

    def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        return super().compute_metrics(x, self._split(y)[0], y_pred, sample_weight)


def as_distiller(student: keras.Model) -> Distiller:
    """The student's graph as a Distiller (the same layers: nothing is copied)."""
    # One input and one output tensor, as the zoo model has them (lists of one would make `model.output` a
    # list, which Grad-CAM and export read as a tensor).
    return Distiller(inputs=student.input, outputs=student.output, name=student.name)


class Teacher:
    """The teacher's networks, loaded for inference only (safe_mode), each with the affine map from the
    student's normalised pixels to its own (each run normalised with its training split's statistics)."""

    def __init__(self, members: Sequence[tuple[keras.Model, float, np.ndarray, np.ndarray]]) -> None:
        self.members = [
            (model, float(w), ops.convert_to_tensor(a), ops.convert_to_tensor(b)) for model, w, a, b in members
        ]

    def probs(self, x: Any, temperature: float) -> Any:
        """The members' softmax(logits / T), averaged with the teacher's weights."""
        total = None
        for model, weight, scale, shift in self.members:
            logits = ops.cast(model(ops.cast(x, "float32") * scale + shift, training=False), "float32")
            p = weight * ops.softmax(logits / temperature, axis=-1)
            total = p if total is None else total + p
        return total


def pixel_map(student_mean: np.ndarray, student_std: np.ndarray, mean: Any, std: Any) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) taking the student's normalised pixels to a teacher's: x = (p - m_s) / s_s, and
    the teacher wants (p - m_t) / s_t = x * s_s / s_t + (m_s - m_t) / s_t."""
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return (student_std / std).astype(np.float32), ((student_mean - mean) / std).astype(np.float32)


def teacher_record(members: Sequence[tuple[int, float, Path]]) -> dict:
    """The teacher as this run uses it: each member's weight and its checkpoint's SHA-256, from (run id,
    weight, checkpoint file) triples."""
    return {str(run_id): {"weight": weight, "sha256": _sha256(path)} for run_id, weight, path in members}


def check_same_teacher(run_dir: Path, members: Sequence[tuple[int, float, Path]]) -> dict:
    """Write the run's teacher record when it starts; on a resume, refuse a teacher that changed since
    (a member's checkpoint rewritten, one gone): the run continues with the networks it started with."""
    record = teacher_record(members)
    path = run_dir / TEACHER_RECORD
    if path.is_file():
        before = json.loads(path.read_text())
        if before != record:
            changed = sorted(set(before) ^ set(record) | {k for k in before if before[k] != record.get(k)})
            raise UserError(
                f"the teacher changed since this run started (run(s) {', '.join(changed)}); "
                "resuming would mix two teachers: start a new distillation run instead"
            )
        return record
    tmp = run_dir / f".{TEACHER_RECORD}.tmp"
    tmp.write_text(json.dumps(record, sort_keys=True))
    os.replace(tmp, path)
    return record


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
