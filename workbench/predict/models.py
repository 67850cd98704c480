"""A completed run's trained model and how its pixels reach it, loaded once and kept in an LRU cache.

    cache = ModelCache(store)                 # one per process (the Predict tab's, the benchmark's)
    loaded = cache.get(run_id)                # LoadedModel: .model, .preprocessing, .run
    logits = loaded.logits(uint8_images)      # float32 [N, K], as the run's evaluation computed them

The checkpoint (`model.keras`, loaded with Keras' safe_mode) is the model of the run's last epoch, the
one whose logits the store holds. What the training pipeline did to the pixels before the model saw
them is `preprocessing.json` beside it (written when training started): the training split's channel
statistics for a scratch run, none for a fine-tune (its model preprocesses 0..255 itself) but the size
it resized each batch to. Runs trained before that file existed get it rebuilt from their spec and
dataset (the same `prepare_data` training used), which needs the dataset to be where it was.
The cache is keyed by run id and the checkpoint's modification time, so a run trained again under
the same id (or a replaced file) is loaded anew.
"""

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from workbench.constants import RunKind, RunStatus
from workbench.data.split import prepare_data
from workbench.errors import UserError
from workbench.specs import spec_class
from workbench.training.checkpoint import CHECKPOINT, PREPROCESSING, load_checkpoint
from workbench.training.runners import runner_for

MODELS_KEPT = 4  # loaded models held at once (ResNet-20: ~3 MB; WRN-28-10: ~150 MB)


@dataclass(frozen=True)
class Preprocessing:
    mean: tuple | None  # per channel, 0..255 scale; None: the model takes 0..255 pixels itself
    std: tuple | None
    resize_to: int | None  # the size each batch was resized to (fine-tunes), else None
    image_shape: tuple  # the dataset's image shape, (32, 32, 3) for CIFAR
    class_names: tuple

    @property
    def image_size(self) -> int:
        return int(self.image_shape[0])

    def apply(self, images) -> np.ndarray:
        """uint8 (or 0..255 float) [N, H, W, 3] -> what the model was trained on, as the pipeline does it
        (`workbench.data.pipeline.make_dataset`: normalise, then resize bilinearly)."""
        x: np.ndarray = np.asarray(images, np.float32)
        if self.mean is not None:
            x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        if self.resize_to and x.shape[1:3] != (self.resize_to, self.resize_to):
            x = tf.image.resize(x, (self.resize_to, self.resize_to), method="bilinear").numpy()
        return x

    def to_dict(self) -> dict:
        return {
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
            "resize_to": self.resize_to,
            "image_shape": list(self.image_shape),
            "class_names": list(self.class_names),
        }


def _from_dict(info: dict) -> Preprocessing:
    pick = lambda key: None if info.get(key) is None else tuple(float(v) for v in info[key])  # noqa: E731
    return Preprocessing(
        pick("mean"),
        pick("std"),
        info.get("resize_to"),
        tuple(info["image_shape"]),
        tuple(str(c) for c in info["class_names"]),
    )


def completed_run(store, run_id: int) -> dict:
    """The run, refused unless it completed and its checkpoint is there."""
    run = store.get_run(int(run_id))
    if run["status"] != RunStatus.COMPLETED:
        raise UserError(f"run {run['id']} is {run['status']}; only completed runs can predict or be exported")
    if not (store.run_dir(run["id"]) / CHECKPOINT).exists():
        raise UserError(
            f"run {run['id']} has no checkpoint ({store.run_dir(run['id']) / CHECKPOINT} is missing); "
            "train it again to use it"
        )
    return run


def preprocessing_of(store, run: dict) -> Preprocessing:
    """How the run's training pipeline prepared pixels: its `preprocessing.json`, else rebuilt from its
    spec and dataset (runs trained before the file was written)."""
    path = store.run_dir(run["id"]) / PREPROCESSING
    if path.exists():
        try:
            return _from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # damaged: rebuild it below
    try:
        spec = spec_class(run.get("kind") or RunKind.SCRATCH).from_dict(run["spec"])
        runner = runner_for(spec)
        data = prepare_data(spec, stats=runner.normalizes)
    except (UserError, OSError, TypeError, ValueError) as exc:
        raise UserError(
            f"run {run['id']} was trained before its preprocessing was stored, and its dataset "
            f"cannot be loaded to rebuild it ({exc})"
        ) from None
    return Preprocessing(
        None if data.mean is None else tuple(float(m) for m in data.mean),
        None if data.std is None else tuple(float(s) for s in data.std),
        runner.resize_to,
        tuple(data.dataset.image_shape),
        tuple(str(c) for c in data.dataset.class_names),
    )


@dataclass(eq=False)
class LoadedModel:
    run: dict
    model: Any  # keras.Model: preprocessed pixels in, logits out
    preprocessing: Preprocessing
    gradcam: object = None  # its `workbench.predict.gradcam.GradCam`, made on first use, dropped with it

    @property
    def class_names(self) -> list:
        return list(self.preprocessing.class_names)

    def logits(self, images, *, flip: bool = False) -> np.ndarray:
        """float32 [N, K] logits of uint8 (or 0..255 float) [N, H, W, 3] images (`flip`: mirrored)."""
        x = np.asarray(images)
        if flip:
            x = x[:, :, ::-1]
        return np.asarray(self.model(self.preprocessing.apply(x), training=False), np.float32)


class ModelCache:
    """Loaded models by (run id, checkpoint mtime), the least recently used dropped beyond `size`."""

    def __init__(self, store, size: int = MODELS_KEPT):
        self.store, self.size = store, size
        self._models: OrderedDict[tuple, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: int) -> LoadedModel:
        run = completed_run(self.store, run_id)
        path = self.store.run_dir(run["id"]) / CHECKPOINT
        key = (run["id"], path.stat().st_mtime_ns)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        loaded = LoadedModel(run, load_checkpoint(path.parent), preprocessing_of(self.store, run))
        with self._lock:
            for old in [k for k in self._models if k[0] == run["id"]]:
                del self._models[old]  # an older checkpoint of the same run
            self._models[key] = loaded
            while len(self._models) > self.size:
                self._models.popitem(last=False)
        return loaded

    def __len__(self) -> int:
        return len(self._models)
