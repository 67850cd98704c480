"""TensorBoard event files (workbench.training.tensorboard), read back with TensorBoard's own reader: exported
from the store (`export N|all --format tensorboard`) and written live by a run that asks for them."""

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

from workbench.cli.main import main
from workbench.jobs.queue import JobQueue
from workbench.specs.run import RunSpec
from workbench.training.tensorboard import default_logdir, run_folder

TINY = dict(
    model="lenet",
    dataset="synthetic",
    dataset_options={"n_train": 300, "n_test": 60},
    batch_size=50,
    learning_rate=0.05,
    schedule="cosine",
    augment=(),
)


def read(folder) -> tuple:
    """({tag: [(step, value)]}, hyperparameters) of one event folder, as TensorBoard reads them."""
    events = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    events.Reload()
    scalars = {
        tag: [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in events.Tensors(tag)]
        for tag in events.Tags()["tensors"]
        if not tag.startswith("_hparams_")
    }
    hparams = {}
    try:
        contents = events.PluginTagToContent("hparams")
    except KeyError:  # a folder without hyperparameters (train/, validation/)
        contents = {}
    for content in contents.values():
        info = metadata.parse_session_start_info_plugin_data(content)
        hparams = {key: getattr(value, value.WhichOneof("kind")) for key, value in info.hparams.items()}
    return scalars, hparams


def _finished(store, name="wrn focal/seed 1", epochs=3, tags=("sweep:study",)):
    spec = RunSpec(model="wrn_16_8", loss="focal", epochs=epochs, seed=1, name=name)
    run_id = store.create_run(name, spec.to_dict(), tags=tags)
    store.set_status(run_id, "running")
    for epoch in range(1, epochs + 1):
        store.log_epoch(
            run_id,
            epoch,
            lr=0.1 / epoch,
            loss=2.0 / epoch,
            accuracy=0.2 * epoch,
            val_loss=2.5 / epoch,
            val_accuracy=0.15 * epoch,
            seconds=10.0 + epoch,
        )
    store.update_run(run_id, test_accuracy=0.42)
    store.set_status(run_id, "completed")
    return run_id


def test_export_writes_a_runs_epochs_learning_rate_and_hyperparameters(store, tmp_path, capsys):
    run_id = _finished(store)
    empty = store.create_run("not started", RunSpec().to_dict())
    logdir = tmp_path / "tb"
    assert main(["--db", str(store.path), "export", "all", "--format", "tensorboard", "-o", str(logdir)]) == 0
    out = capsys.readouterr().out
    assert f"run {empty} (interrupted) has no epoch yet" in out  # queued, and no process runs the store
    assert f"wrote 1 run(s) to {logdir}; view them: tensorboard --logdir {logdir}" in out
    folder = logdir / run_folder(store.get_run(run_id))
    assert folder.name == "run-0001-wrn_focal_seed_1"
    train, _ = read(folder / "train")
    validation, _ = read(folder / "validation")
    top, hparams = read(folder)
    assert [step for step, _ in train["epoch_loss"]] == [1, 2, 3]
    np.testing.assert_allclose([v for _, v in train["epoch_loss"]], [2.0, 1.0, 2 / 3], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in train["epoch_learning_rate"]], [0.1, 0.05, 0.1 / 3], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in validation["epoch_accuracy"]], [0.15, 0.3, 0.45], rtol=1e-6)
    assert set(validation) == {"epoch_loss", "epoch_accuracy"}
    assert top["test_accuracy"] == [(3, pytest.approx(0.42))]
    assert hparams["model"] == "wrn_16_8" and hparams["loss"] == "focal" and hparams["sweep"] == "study"
    assert hparams["seed"] == 1 and hparams["augment"] == "flip_crop" and "name" not in hparams
    # Exporting again replaces the run's events instead of adding a second copy.
    assert main(["--db", str(store.path), "export", str(run_id), "--format", "tensorboard", "-o", str(logdir)]) == 0
    assert len(read(folder / "train")[0]["epoch_loss"]) == 3
    assert len(list(folder.glob("**/events.out.tfevents.*"))) == 3


def test_export_refusals_are_one_line(store, tmp_path, capsys):
    _finished(store)
    assert main(["--db", str(store.path), "export", "all", "--format", "csv"]) == 2
    assert "'all' exports TensorBoard events only" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["--db", str(store.path), "export", "1", "--format", "tensorboard", "-o", str(tmp_path / "file")]) == 2
    assert "is a file; --output names the folder" in capsys.readouterr().err


def test_a_run_that_asks_writes_its_events_live_as_it_trains(store):
    spec = RunSpec.from_dict({**TINY, "epochs": 2, "tensorboard": True, "name": "live"})
    assert "--tensorboard" in spec.to_cli()
    queue = JobQueue(store, devices=[], isolate=False)
    try:
        run_id = queue.submit(spec)
        queue.wait(run_id, timeout=300)
    finally:
        queue.shutdown()
    run = store.get_run(run_id)
    assert run["status"] == "completed", run["error"]
    folder = default_logdir(store) / run_folder(run)
    train, _ = read(folder / "train")
    top, hparams = read(folder)
    stored = store.epochs(run_id)
    assert [step for step, _ in train["epoch_loss"]] == [1, 2]
    np.testing.assert_allclose([v for _, v in train["epoch_loss"]], [e["loss"] for e in stored], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in train["epoch_learning_rate"]], [e["lr"] for e in stored], rtol=1e-6)
    assert top["test_accuracy"] == [(2, pytest.approx(run["test_accuracy"]))]
    assert hparams["model"] == "lenet" and hparams["augment"] == "none" and hparams["schedule"] == "cosine"


def test_a_resumed_run_rewrites_its_live_folder_from_the_epochs_it_kept(store):
    from workbench.training.tensorboard import export, live_writer

    run_id = _finished(store, name="resumed", epochs=3, tags=())
    logdir, _, _ = export(store, run_id)  # the live folder as the first attempt left it
    store.truncate_epochs(run_id, 2)  # resumed from the epoch-2 checkpoint
    writer = live_writer(RunSpec(tensorboard=True), store, run_id)
    writer.epoch({"epoch": 3, "lr": 0.01, "loss": 0.5, "accuracy": 0.9, "val_loss": 0.6, "val_accuracy": 0.8})
    writer.close()
    train, _ = read(logdir / run_folder(store.get_run(run_id)) / "train")
    assert [(step, round(value, 4)) for step, value in train["epoch_loss"]] == [(1, 2.0), (2, 1.0), (3, 0.5)]
    assert live_writer(RunSpec(), store, run_id) is None
