"""Knowledge distillation (a run of kind "distill"): the loss against a hand computation, a student
that learns faster with a right teacher, teachers refused before queueing, cached mode, and a cancelled
run resumed with the same teacher. Real training of LeNet on the synthetic stripes, through the queue."""

import json

import keras
import numpy as np
import pytest
from conftest import completed_run, wait_until

from store import Store
from workbench.cli.main import main
from workbench.errors import UserError
from workbench.jobs.queue import JobQueue
from workbench.predict.gradcam import GradCam
from workbench.specs import DistillSpec, RunSpec
from workbench.training.distiller import TEACHER_RECORD, TEACHER_TARGETS, Distiller, as_distiller, distillation_loss
from workbench.views.runs import lineage

# Four classes of stripes: LeNet learns them perfectly in a few epochs, so the teacher can be always right.
DATA = dict(
    dataset="synthetic",
    dataset_options={"n_train": 600, "n_test": 100, "num_classes": 4},
    batch_size=50,
    augment=("flip_crop",),
)
# A student that learns slowly on its own (a small constant learning rate), so a teacher's help shows.
STUDENT = dict(
    model="lenet", model_kwargs={"width": 0.5}, optimizer="sgd", learning_rate=0.0025, schedule="constant", **DATA
)


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_distillation_loss_equals_a_hand_computed_value():
    teacher = np.array([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]], np.float32)
    student = np.array([[1.0, 0.5, 0.0], [0.0, 0.0, 2.0]], np.float32)
    labels = np.eye(3, dtype=np.float32)[[0, 2]]
    t, alpha = 2.0, 0.7
    p, q = softmax(teacher / t), softmax(student / t)
    kl = float((p * np.log(p / q)).sum(1).mean())  # 0.0947..., by hand from the definition
    ce = float(-(labels * np.log(softmax(student))).sum(1).mean())
    assert float(distillation_loss(p, student, t)) == pytest.approx(t * t * kl, rel=1e-5)

    # The whole loss of a Distiller given cached targets: alpha*T^2*KL + (1-alpha)*CE (no regulariser here)
    inputs = keras.Input((3,))
    model = as_distiller(keras.Model(inputs, keras.layers.Identity()(inputs)))
    model.compile(loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    model.teach(None, temperature=t, alpha=alpha, cached=True)
    y = np.concatenate([labels, p], axis=1)
    total = float(model.compute_loss(student, y, student, training=True))
    assert total == pytest.approx(alpha * t * t * kl + (1 - alpha) * ce, rel=1e-5)
    # validation and evaluation: the run's loss on the labels only
    assert float(model.compute_loss(student, labels, student, training=False)) == pytest.approx(ce, rel=1e-5)


@pytest.fixture(scope="module")
def taught(tmp_path_factory):
    """A store with a teacher that is right on every validation image (LeNet, 4 epochs on the stripes),
    saved as a one-member ensemble, and a thread queue (what is tested is training, not processes)."""
    store = Store(tmp_path_factory.mktemp("distill") / "runs" / "workbench.db")
    queue = JobQueue(store, devices=[], isolate=False)
    spec = RunSpec.from_dict(
        dict(model="lenet", epochs=4, optimizer="adam", learning_rate=3e-3, schedule="cosine", **DATA)
    )
    teacher = queue.submit(spec)
    assert queue.wait(teacher, timeout=300)
    run = store.get_run(teacher)
    assert run["status"] == "completed", run["error"]
    val = store.load_logits(teacher, "val")
    print("teacher val accuracy", run["best_val_accuracy"], run["test_accuracy"])
    assert (val.argmax(1) == store.load_labels(teacher, "val")).all(), "the teacher must be always right"
    ensemble = store.save_ensemble("right", "mean-prob", [teacher], [1.0])
    yield store, queue, teacher, ensemble
    queue.shutdown()
    store.close()


def student(**changes) -> DistillSpec:
    return DistillSpec.from_dict({**STUDENT, "epochs": 1, "teacher": "ensemble:right", **changes})


def test_a_student_of_a_right_teacher_learns_faster_than_alone(taught):
    store, queue, teacher, _ = taught
    with_teacher = queue.submit(student(alpha=0.9, temperature=4.0))
    alone = queue.submit(RunSpec.from_dict({**STUDENT, "epochs": 1}))
    assert queue.wait(with_teacher, timeout=300) and queue.wait(alone, timeout=300)
    taught_run, alone_run = store.get_run(with_teacher), store.get_run(alone)
    assert taught_run["status"] == "completed", taught_run["error"]
    assert taught_run["kind"] == "distill" and taught_run["spec"]["teacher_members"] == {str(teacher): 1.0}
    print("taught", taught_run["best_val_accuracy"], "alone", alone_run["best_val_accuracy"])
    gain = taught_run["best_val_accuracy"] - alone_run["best_val_accuracy"]
    # Same seed, model, data order and steps: after one epoch the taught student is >= 10 points ahead.
    assert gain >= 0.10, (taught_run["best_val_accuracy"], alone_run["best_val_accuracy"])
    # its checkpoint is the student, loaded with safe_mode like any run's
    model = keras.models.load_model(taught_run["checkpoint_path"], safe_mode=True)
    assert isinstance(model, Distiller) and model.count_params() == taught_run["params"]
    logits, maps = GradCam(model)(np.zeros((2, 32, 32, 3), np.float32))  # the Predict tab's map of it
    assert np.asarray(logits).shape == (2, 4) and np.asarray(maps).shape[0] == 2


@pytest.mark.slow  # about 7 s on a quiet machine: the default suite's budget goes to the checks the issue names
def test_cached_mode_stores_the_teachers_outputs_once(taught):
    store, queue, _, _ = taught
    run_id = queue.submit(student(distill_mode="cached"))
    assert queue.wait(run_id, timeout=300)
    run = store.get_run(run_id)
    assert run["status"] == "completed", run["error"]
    targets = np.load(store.run_dir(run_id) / TEACHER_TARGETS)
    assert targets.shape == (540, 4) and np.allclose(targets.sum(1), 1, atol=1e-4)
    assert run["spec"]["distill_mode"] == "cached"


def test_teachers_that_cannot_teach_are_refused_naming_the_member(taught, tmp_path):
    store, queue, teacher, _ = taught
    rng = np.random.default_rng(0)
    split = store.get_run(teacher)["split_id"]
    spec = store.get_run(teacher)["spec"]
    # a completed run whose model file was not kept (written through the store, as an imported run is)
    lost = completed_run(store, "no-file", spec, split_id=split, logits={"val": np.arange(60) % 4}, rng=rng)
    store.save_ensemble("half-saved", "mean-prob", [teacher, lost], [0.5, 0.5])
    with pytest.raises(UserError, match=rf"member run {lost} \(no-file\) has no checkpoint"):
        queue.submit(student(teacher="ensemble:half-saved"))
    with pytest.raises(UserError, match="no ensemble 'nope'"):
        queue.submit(student(teacher="ensemble:nope"))
    with pytest.raises(UserError, match="split_seed"):
        queue.submit(student(teacher=f"run:{teacher}", split_seed=3))
    with pytest.raises(UserError, match="needs a teacher"):
        student(teacher="").validate()
    with pytest.raises(UserError, match="cutmix would mix"):
        student(distill_mode="cached", augment=("cutmix",)).validate()


def test_a_cancelled_distillation_resumes_with_the_same_teacher(taught):
    store, queue, teacher, _ = taught
    ensemble = store.save_ensemble("moving", "mean-prob", [teacher], [1.0])
    run_id = queue.submit(student(teacher=f"ensemble:{ensemble}", epochs=3))
    wait_until(lambda: len(store.epochs(run_id)) >= 1, "the first epoch", timeout=300, every=0.1)
    queue.cancel(run_id)
    assert queue.wait(run_id, timeout=120)
    assert store.get_run(run_id)["status"] == "cancelled"
    record = json.loads((store.run_dir(run_id) / TEACHER_RECORD).read_text())
    assert list(record) == [str(teacher)]
    store.delete_ensemble(ensemble)  # the ensemble it named is gone: the run still knows its teacher
    queue.resume(run_id)
    assert queue.wait(run_id, timeout=300)
    run = store.get_run(run_id)
    assert run["status"] == "completed", run["error"]
    assert [e["epoch"] for e in store.epochs(run_id)] == [1, 2, 3]
    assert run["spec"]["teacher_members"] == {str(teacher): 1.0}
    assert json.loads((store.run_dir(run_id) / TEACHER_RECORD).read_text()) == record
    # its lineage, as the CLI's `runs` and the Runs tab show it
    assert lineage(run) == f"taught by ensemble:{ensemble} (run {teacher}), online, T 2.0, alpha 0.5"


def test_the_cli_refuses_an_unknown_teacher_and_lists_the_lineage(taught, tmp_path, capsys):
    _, _, teacher, _ = taught
    flags = ["--model", "lenet", "--dataset", "synthetic", "--epochs", "1"]
    db = str(tmp_path / "cli.db")
    assert main(["--db", db, "distill", *flags, "--teacher", "ensemble:nope"]) == 2
    assert "no ensemble 'nope'" in capsys.readouterr().err
    assert main(["--db", db, "distill", *flags, "--teacher", "ensemble:nope", "--dry-run"]) == 2  # checked too
    assert "no ensemble 'nope'" in capsys.readouterr().err
    assert main(["--db", db, "distill", *flags]) == 2
    assert "needs a teacher: --teacher" in capsys.readouterr().err
    queued = student(teacher_members={str(teacher): 1.0}, distill_mode="cached")  # as queueing resolves it
    with Store(tmp_path / "lineage.db") as other:
        other.create_run("taught", queued.to_dict(), kind=queued.kind)
    assert main(["--db", str(tmp_path / "lineage.db"), "runs"]) == 0
    assert f"taught by ensemble:right (run {teacher}), cached, T 2.0, alpha 0.5" in capsys.readouterr().out


@pytest.mark.slow  # the app server and two calls: the same refusal through the queue is checked by default above
def test_the_distil_form_refuses_a_teacher_member_without_checkpoint(app_server):
    """The Train tab's Distil box (its API, as the button calls it) names the member that cannot teach."""
    from gradio_client import Client

    from workbench.ui.forms import spec_to_form_values

    with Store(app_server.db) as store:
        spec = RunSpec.from_dict({**STUDENT, "epochs": 1})
        rng = np.random.default_rng(0)
        lost = completed_run(store, "lost-file", spec.to_dict(), logits={"val": np.arange(60) % 4}, rng=rng)
        ensemble = store.save_ensemble("no-files", "mean-prob", [lost], [1.0])
    client = Client(app_server.url, verbose=False)
    form = spec_to_form_values(spec)
    message, _ = client.predict("", *form, f"ensemble:{ensemble}", 4.0, 0.9, "online", api_name="/distill")
    assert "Not queued" in message and f"member run {lost} (lost-file) has no checkpoint" in message
    message, _ = client.predict("", *form, "", 4.0, 0.9, "online", api_name="/distill")
    assert "choose a teacher" in message
