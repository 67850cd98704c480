"""The fast recipe (cifar10-airbench in Keras): the airbench family, its whitening init, the linear schedule,
alternating flip and translate, the weight EMA, translate test-time augmentation from training to the
Ensemble lab, and the presets that use them. Tiny sizes only: accuracy belongs to bench/fast_recipe.py."""

import threading

import keras
import numpy as np
import pytest

import models
from models.airbench import WHITEN, init_whitening, patches, whitening_kernel
from workbench.data.augment.ops import build_augmenter
from workbench.data.pipeline import BatchOptions, make_dataset
from workbench.ensemble import lab
from workbench.errors import UserError
from workbench.specs.presets import load_preset
from workbench.specs.run import RunSpec
from workbench.training.schedules import PiecewiseLinear, build_schedule, learning_rates


def _smooth_images(n=40, size=16, seed=0):
    """Correlated neighbouring pixels and channels, as in photographs (a whitening has work to do)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, size, size, 3))
    x = x + np.roll(x, 1, axis=1) + np.roll(x, 1, axis=2)
    return (x + 0.5 * x.mean(axis=3, keepdims=True)).astype(np.float32)


def test_whitening_gives_unit_covariance_on_its_patches():
    images = _smooth_images()
    kernel = whitening_kernel(images, eps=1e-9)
    assert kernel.shape == (2, 2, 3, 24)
    p = patches(images)
    out = p @ kernel.reshape(12, 24)
    covariance = out.T @ out / len(out)
    assert np.allclose(covariance[:12, :12], np.eye(12), atol=1e-4)
    assert np.allclose(out[:, 12:], -out[:, :12])  # the negated half keeps both signs through GELU
    # The paper's eps only shrinks the smallest directions a little.
    eps_cov = p @ whitening_kernel(images).reshape(12, 24)[:, :12]
    assert np.all(np.diag(eps_cov.T @ eps_cov / len(p)) > 0.9)
    # The patch layout is the Conv2D kernel's: the layer gives the same outputs as the matrix product.
    model = models.create_model("airbench_cpu", input_shape=(16, 16, 3), **models.model_info("airbench_cpu")["tiny"])
    init_whitening(model, images, eps=1e-9)
    conv = keras.Model(model.input, model.get_layer(WHITEN).output)
    assert np.allclose(
        conv.predict(images[:2], verbose=0).reshape(-1, 24), p[: 2 * 15 * 15] @ kernel.reshape(12, 24), atol=1e-3
    )


def test_family_builds_trains_a_step_and_round_trips(tmp_path):
    tiny = models.model_info("airbench94")["tiny"]
    model = models.create_model("airbench94", weight_decay=5e-4, **tiny)
    assert WHITEN not in {w.path.split("/")[0] for w in model.trainable_weights}
    images = _smooth_images(8, 32)
    models.init_from_data("airbench94", model, images)
    kernel = keras.ops.convert_to_numpy(model.get_layer(WHITEN).kernel)
    model.compile(
        keras.optimizers.SGD(0.1, momentum=0.85, nesterov=True, use_ema=True),
        keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2),
    )
    y = np.eye(10, dtype=np.float32)[np.arange(8) % 10]
    loss = model.train_on_batch(images, y)
    assert np.isfinite(loss)
    assert np.array_equal(keras.ops.convert_to_numpy(model.get_layer(WHITEN).kernel), kernel)  # frozen
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert np.allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)
    assert models.needs_data_init("airbench_cpu") and not models.needs_data_init("resnet20")
    with pytest.raises(UserError, match="widths"):
        models.create_model("airbench_cpu", widths=[8, 0])


def test_linear_schedule_warms_up_from_a_fraction_then_decays():
    schedule = build_schedule("linear", base_lr=0.4, epochs=10, steps_per_epoch=10, warmup_epochs=2)
    lr = learning_rates(schedule, [0, 10, 20, 60, 100, 150])
    assert np.allclose(lr, [0.08, 0.24, 0.4, 0.4 - 0.5 * (0.4 - 0.028), 0.028, 0.028], atol=1e-6)
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert isinstance(again, PiecewiseLinear) and float(again(60)) == pytest.approx(float(schedule(60)))
    with pytest.raises(UserError, match="fractions"):
        build_schedule("linear", base_lr=0.1, epochs=2, steps_per_epoch=1, params={"final_fraction": 2})


def _mirrored_per_epoch(first_epoch, epochs=3, n=8):
    x = np.zeros((n, 4, 4, 3), np.uint8)
    x[:, :, 0] = 255  # a white left column: mirrored images have it on the right
    x[:, 0, 1, 0] = np.arange(n)  # each image's index, at column 1 (column 2 once mirrored)
    ds = make_dataset(
        x,
        np.arange(n) % 2,
        BatchOptions(num_classes=2, batch_size=4, mean=np.zeros(3), std=np.ones(3)),
        training=True,
        augment=("alt_flip",),
        seed=3,
        first_epoch=first_epoch,
    )
    rows = []
    for _ in range(epochs):
        seen = {}
        for xb, _ in ds:
            for img in xb.numpy():
                mirrored = img[0, 0, 0] < 200
                seen[int(img[0, 2 if mirrored else 1, 0])] = mirrored
        rows.append([seen[i] for i in range(n)])
    return np.array(rows)


def test_alternating_flip_mirrors_each_image_every_other_epoch():
    rows = _mirrored_per_epoch(0)
    assert 0 < rows[0].sum() < len(rows[0])  # a random half starts mirrored
    assert np.array_equal(rows[1], ~rows[0]) and np.array_equal(rows[2], rows[0])
    assert np.array_equal(_mirrored_per_epoch(1, epochs=1)[0], rows[1])  # a resumed run keeps the parity


def test_translate_moves_without_mirroring():
    x = np.tile(np.arange(8, dtype=np.float32)[None, None, :, None], (16, 8, 1, 3))  # columns 0..7
    augment = build_augmenter(("alt_flip", "translate"), 8, translate=2)
    out = augment(x, np.eye(2, dtype=np.float32)[np.zeros(16, int)], np.array([1, 2]))[0].numpy()
    steps = np.diff(out[:, 3, 2:6, 0], axis=1)
    assert np.all(steps == 1)  # never mirrored: columns increase away from the reflected border
    assert len({tuple(row) for row in out[:, 3, :, 0]}) > 1  # but moved by differing offsets
    with pytest.raises(UserError, match="choose one"):
        build_augmenter(("flip_crop", "translate"), 8)


def test_translate_tta_logits_are_stored_and_scored(store):
    from workbench.training.fit import fit

    spec = RunSpec(
        model="airbench_cpu",
        model_kwargs={"widths": [4, 4, 4]},
        loss="label_smoothing",
        augment=("alt_flip", "translate"),
        schedule="linear",
        warmup_epochs=0.5,
        learning_rate=0.1,
        momentum=0.85,
        ema_momentum=0.9,
        epochs=1,
        batch_size=64,
        gpus=0,
        dataset="synthetic",
        dataset_options={"n_train": 256, "n_test": 64, "num_classes": 4},
    ).validate()
    run_id = store.create_run("tiny", spec.to_dict())
    assert fit(spec, store, run_id, devices=[], stop=threading.Event()) == "completed"
    splits = set(store.prediction_splits(run_id))
    assert splits == {f"{s}{v}" for s in ("val", "test") for v in lab.VIEWS}
    assert not np.allclose(store.load_logits(run_id, "test_translate"), store.load_logits(run_id, "test"))
    # The checkpoint Predict and export load is the EMA model whose logits are stored, not the raw weights.
    from workbench.predict.features import split_features
    from workbench.predict.models import ModelCache

    computed = split_features(store, run_id, "test", models=ModelCache(store), cache={})
    np.testing.assert_allclose(computed.logits, store.load_logits(run_id, "test"), rtol=1e-4, atol=1e-4)
    # A second member: the first one's logits, perturbed (the lab only reads stored logits).
    other = store.create_run("twin", spec.to_dict(), split_id=store.get_run(run_id)["split_id"])
    rng = np.random.default_rng(0)
    for split in splits:
        logits = store.load_logits(run_id, split)
        store.save_logits(other, split, logits + rng.normal(size=logits.shape), store.load_labels(run_id, split))
    store.set_status(other, "completed")
    members = lab.Lab(store).load([run_id, other])
    plain = lab.score(members, [1, 1], lab.Settings())
    both = lab.score(members, [1, 1], lab.Settings(tta=True, translate=True))
    assert both["test"]["nll"] != pytest.approx(plain["test"]["nll"])
    assert lab.Settings(tta=True, translate=True).views() == ["", "_flip", "_translate", "_translate_flip"]
    assert "translate TTA" in lab.Settings(translate=True).describe()


def test_translate_tta_is_refused_for_runs_without_translated_logits(store):
    ids = []
    for name in ("a", "b"):
        run_id = store.create_run(name, {}, split_id="s")
        for split in ("val", "test"):
            store.save_logits(run_id, split, np.zeros((4, 3), np.float32), np.arange(4) % 3)
        store.set_status(run_id, "completed")
        ids.append(run_id)
    members = lab.Lab(store).load(ids)
    with pytest.raises(UserError, match="translate test-time augmentation"):
        lab.score(members, [1, 1], lab.Settings(translate=True))


def test_presets_parse_and_their_runs_validate():
    (fast,) = load_preset("fast")
    assert fast.model == "airbench_cpu" and fast.schedule == "linear" and "alt_flip" in fast.augment
    quick = load_preset("quick")  # three fast-recipe runs that differ in their seed, and the LeNet pair
    fast_members = [s for s in quick if s.model == "airbench_cpu"]
    assert len(quick) == 5 and len(fast_members) == 3 and len({s.seed for s in fast_members}) == 3
    assert {s.model for s in quick} == {"airbench_cpu", "lenet"}
    assert all(s.schedule == fast.schedule and s.augment == fast.augment for s in fast_members)
    for spec in quick + [fast]:
        spec.replace(gpus=0).validate()
    (speedrun,) = load_preset("speedrun")
    assert (speedrun.model, speedrun.precision, speedrun.xla) == ("airbench94", "mixed_float16", True)
    speedrun.validate(available_gpus=1)


def test_ema_momentum_turns_on_the_optimizers_average():
    from workbench.training.runners import build_optimizer

    assert build_optimizer(RunSpec(ema_momentum=0.99), 0.1).use_ema
    assert not build_optimizer(RunSpec(), 0.1).use_ema
    with pytest.raises(UserError, match="EMA momentum"):
        RunSpec(ema_momentum=1.0).validate()
