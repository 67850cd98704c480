"""The fine-tune model: an ImageNet backbone with a new head, and its two phases (a FinetuneSpec's run,
trained by the one loop in `workbench.training.fit` through `runners.FinetuneRunner`).

    model, backbone = build_model(spec, num_classes)     # 0..255 RGB in, float32 logits out
    set_phase(backbone, 2, unfreeze_index(spec, backbone)); compile_phase(model, spec, 2)

Phase 1 (epochs 1..head_epochs): the backbone is frozen and called with training=False (BatchNorm in
inference mode), RMSprop(head_lr) trains the head. Phase 2 (head_epochs+1..epochs): the backbone's
layers from the unfreeze index on become trainable except BatchNorm (as the Keras transfer-learning
guide recommends), SGD(finetune_lr, momentum 0.9, Nesterov). The pipeline delivers 0..255 pixels
(make_dataset with mean 0, std 1), augmented at 32x32 and resized per batch inside tf.data; the
backbone's preprocessing is built-in layers in the model (see workbench/finetune_spec.py).

Checkpoints: `checkpoint.StoreCallback` writes the whole model as model.keras each epoch. For keras.applications
backbones it loads with keras.models.load_model(..., safe_mode=True). A hub backbone is a TFSMLayer,
which Keras refuses to deserialise in safe mode (it loads an external SavedModel), so its model.keras
needs safe_mode=False to load standalone. Resume never deserialises: it rebuilds the model from the
spec and loads the checkpoint's weights (and optimizer state when the phase's optimizer matches).
"""

import re

import keras
import numpy as np

from workbench.errors import UserError
from workbench.paths import keras_home
from workbench.specs.finetune import BACKBONES, HUB_PREFIX, FinetuneSpec
from workbench.training.precision import under_policy

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


# --- model ------------------------------------------------------------------------------------


def resolve_hub(handle: str) -> str:
    """A hub handle's local SavedModel folder (local paths pass through); UserError if unresolvable."""
    try:
        import tensorflow_hub as hub  # noqa: PLC0415 - TF Hub: optional, and only hub backbones need it
    except ImportError:
        raise UserError("hub backbones need the tensorflow-hub package") from None
    try:
        return hub.resolve(handle)
    except Exception as exc:  # URLError offline, OSError for a missing folder, ValueError for a bad handle
        raise UserError(
            f"cannot resolve the hub backbone {handle!r} ({exc}). Offline, download the model on a "
            "machine with internet, copy its SavedModel folder here and use hub:/path/to/folder "
            "(or set TFHUB_CACHE_DIR to a cache that already holds it)"
        ) from None


def build_backbone(spec: FinetuneSpec, weights: str | None = None) -> keras.layers.Layer:
    """The backbone alone, include_top=False, at spec.image_size. weights: override spec.weights
    ("none" on resume, where the checkpoint's weights replace them). Load failures become UserErrors."""
    size = spec.image_size
    if spec.is_hub:
        path = resolve_hub(spec.hub_handle)
        try:  # float32: the SavedModel's signature is float32 whatever the mixed-precision policy
            return keras.layers.TFSMLayer(
                path, call_endpoint="serving_default", trainable=True, dtype="float32", name="backbone"
            )
        except Exception as exc:
            raise UserError(
                f"hub backbone {spec.hub_handle} is not a TF2 SavedModel with a 'serving_default' signature: {exc}"
            ) from None
    info = BACKBONES[spec.backbone]
    weights = spec.weights if weights is None else weights
    try:
        return info.constructor(
            include_top=False, weights=None if weights == "none" else weights, input_shape=(size, size, 3)
        )
    except Exception as exc:
        raise _weights_error(spec, weights, exc) from None


def _weights_error(spec: FinetuneSpec, weights: str, exc: BaseException) -> UserError:
    if weights == "imagenet":
        url = re.search(r"URL fetch failure on (\S+):\s", str(exc))
        if url:
            fname = url.group(1).rsplit("/", 1)[-1]
            return UserError(
                f"the ImageNet weights of {spec.backbone} are not in Keras' cache and could not be "
                f"downloaded ({str(exc).split(' -- ')[-1]}). Fetch {url.group(1)} and put it at "
                f"{keras_home() / 'models' / fname} (~/.keras/models/{fname}), or pass --weights PATH "
                "to a weights file, or --weights none"
            )
        return UserError(f"the ImageNet weights of {spec.backbone} could not be loaded: {exc}")
    if weights != "none":
        return UserError(
            f"weights file {weights} does not fit backbone {spec.backbone} at "
            f"{spec.image_size}x{spec.image_size} (include_top=False), or is not a Keras weights file "
            f"(.weights.h5, .h5, .keras): {' '.join(str(exc).split())[:300] or type(exc).__name__}"
        )
    return UserError(f"backbone {spec.backbone} cannot be built at {spec.image_size}x{spec.image_size}: {exc}")


def preprocessing_layer(spec: FinetuneSpec) -> keras.layers.Layer | None:
    """The backbone's preprocess_input as a built-in layer (0..255 RGB in), or None when the backbone
    does it itself. The caffe layer's weights are set by `build_model` once it is built."""
    mode = "hub" if spec.is_hub else BACKBONES[spec.backbone].preprocessing
    if mode == "caffe":
        return keras.layers.Conv2D(3, 1, trainable=False, name="preprocess_caffe")
    if mode == "tf":
        return keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess_tf")
    if mode == "hub":
        return keras.layers.Rescaling(1 / 255.0, name="preprocess_hub")
    return None


def _caffe_weights() -> list[np.ndarray]:
    kernel = np.zeros((1, 1, 3, 3), np.float32)
    for rgb, bgr in ((0, 2), (1, 1), (2, 0)):
        kernel[0, 0, rgb, bgr] = 1.0
    return [kernel, -np.asarray(CAFFE_MEAN_BGR, np.float32)]


def build_model(
    spec: FinetuneSpec, num_classes: int, *, weights: str | None = None
) -> tuple[keras.Model, keras.layers.Layer]:
    """(model, backbone): 0..255 RGB [image_size, image_size, 3] -> preprocessing -> backbone (training=False)
    -> GlobalAveragePooling2D -> Dense(dense_units, relu) -> Dropout -> Dense(num_classes) float32 logits.
    Built under the spec's precision policy. The backbone is frozen (phase 1)."""
    model, backbone, preprocess = under_policy(spec.precision, lambda: _assemble(spec, num_classes, weights))
    if preprocess is not None and preprocess.name == "preprocess_caffe":
        preprocess.set_weights(_caffe_weights())
    backbone.trainable = False
    return model, backbone


def _assemble(
    spec: FinetuneSpec, num_classes: int, weights: str | None
) -> tuple[keras.Model, keras.layers.Layer, keras.layers.Layer | None]:
    size = spec.image_size
    backbone = build_backbone(spec, weights)
    inputs = keras.Input((size, size, 3), name="image")
    preprocess = preprocessing_layer(spec)
    x = preprocess(inputs) if preprocess is not None else inputs
    try:
        x = backbone(x, training=False)
    except Exception as exc:
        if not spec.is_hub:
            raise
        raise UserError(
            f"hub backbone {spec.hub_handle} cannot take {size}x{size}x3 images: {str(exc).splitlines()[0]}"
        ) from None
    if isinstance(x, dict):  # a SavedModel signature returns a dict of named outputs
        if len(x) != 1:
            raise UserError(f"hub backbone {spec.hub_handle} has outputs {sorted(x)}; it needs exactly one")
        x = next(iter(x.values()))
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    elif len(x.shape) != 2:
        raise UserError(f"backbone output has shape {tuple(x.shape)}; expected feature maps or a vector")
    x = keras.layers.Dense(spec.dense_units, activation="relu", name="head_dense")(x)
    if spec.dropout:
        x = keras.layers.Dropout(spec.dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
    model = keras.Model(inputs, outputs, name="finetune_hub" if spec.is_hub else f"finetune_{spec.backbone}")
    return model, backbone, preprocess


def backbone_layers(backbone: keras.layers.Layer) -> list:
    """The layers an unfreeze index counts: a keras.applications model's layers; a hub backbone is one."""
    return list(backbone.layers) if isinstance(backbone, keras.Model) else [backbone]


def unfreeze_index(spec: FinetuneSpec, backbone: keras.layers.Layer) -> int:
    """spec.unfreeze_from, or the backbone's default (-1), checked against the backbone's layers."""
    layers = backbone_layers(backbone)
    if spec.unfreeze_from == -1:
        if spec.is_hub:
            return 0
        default = BACKBONES[spec.backbone].default_unfreeze
        if isinstance(default, int):
            return default
        return [layer.name for layer in layers].index(default)
    if not 0 <= spec.unfreeze_from < len(layers):
        what = (
            "a hub backbone is one layer: use 0 (all of it) or -1"
            if spec.is_hub
            else f"{spec.backbone} at {spec.image_size}px has layers 0..{len(layers) - 1}"
        )
        raise UserError(
            f"unfreeze-from {spec.unfreeze_from} is out of range: {what} "
            "(-1: the backbone's default; the Fine-tune tab's layer table lists them)"
        )
    return spec.unfreeze_from


def _set_trainable(layer: keras.layers.Layer, trainable: bool) -> None:
    """Set a layer trainable, keeping every BatchNormalization inside it frozen."""
    if isinstance(layer, keras.layers.BatchNormalization):
        layer.trainable = False
        return
    layer.trainable = trainable
    if trainable:
        for sub in getattr(layer, "layers", ()):  # nested blocks (ConvNeXt's downsampling Sequential)
            _set_trainable(sub, True)


def set_phase(backbone: keras.layers.Layer, phase: int, start: int) -> list[str]:
    """Phase 1: whole backbone frozen. Phase 2: layers[start:] trainable except BatchNorm. Returns
    the names of the backbone layers that are trainable."""
    if phase == 1:
        backbone.trainable = False
        return []
    backbone.trainable = True
    layers = backbone_layers(backbone)
    if layers == [backbone]:
        return [backbone.name]  # hub: the whole SavedModel (its BatchNorm, if any, runs in inference mode)
    for index, layer in enumerate(layers):
        _set_trainable(layer, index >= start)
    return [layer.name for layer in layers if layer.trainable and layer.weights]


def compile_phase(model: keras.Model, spec: FinetuneSpec, phase: int) -> None:
    optimizer = (
        keras.optimizers.RMSprop(spec.head_lr)
        if phase == 1
        else keras.optimizers.SGD(spec.finetune_lr, momentum=0.9, nesterov=True)
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=False,
    )


# --- the layer table ---------------------------------------------------------------------------


def layer_table(backbone_name: str, image_size: int = 96) -> list:
    """[(index, name, type, trainable params)] of a backbone built with weights=None, for choosing the
    unfreeze point. BatchNorm rows count 0: phase 2 keeps them frozen."""
    spec = FinetuneSpec(
        backbone=backbone_name,
        image_size=image_size,
        weights="none" if not str(backbone_name).startswith(HUB_PREFIX) else "imagenet",
    ).validate()
    backbone = build_backbone(spec)
    rows = []
    for index, layer in enumerate(backbone_layers(backbone)):
        frozen = isinstance(layer, keras.layers.BatchNormalization)
        params = 0 if frozen else sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
        rows.append((index, layer.name, type(layer).__name__, params))
    return rows
