"""The job queue on a real two-node Ray cluster (tests/cluster_fixtures.py: both nodes on 127.0.0.1, one CPU
each), training tiny synthetic runs for real: the store stays the app's, the jobs only send their writes.

One cluster for the file (session-scoped), one store and queue for its tests (module-scoped), so the file
costs a cluster start once; each test queues one or two jobs of a few seconds.
"""

import shutil
import threading
import time

import pytest
from cluster_fixtures import LOOPBACK
from conftest import FIXTURES, wait_until
from conftest import wait_text as _wait_text

from store import Store
from workbench.errors import UserError
from workbench.jobs.queue import JobQueue
from workbench.specs.run import RunSpec

TINY = dict(
    model="resnet20",
    model_kwargs={"depth": 8, "base_width": 4},
    dataset="synthetic",
    dataset_options={"n_train": 600, "n_test": 100},
    batch_size=50,
    learning_rate=0.05,
    schedule="cosine",
    augment=("flip_crop",),
)


def tiny(**changes) -> RunSpec:
    return RunSpec.from_dict({**TINY, "epochs": 2, **changes})


@pytest.fixture(scope="module")
def lab(ray_cluster, tmp_path_factory):
    """(store, queue, backend) on the cluster; checkpoints in a storage folder of their own, opened as a
    file:// URI through pyarrow, so the copy to storage and back into the store's folder is exercised."""
    from workbench.jobs.ray_backend import RayBackend

    folder = tmp_path_factory.mktemp("lab")
    store = Store(folder / "runs" / "workbench.db")
    backend = RayBackend(store, ray_cluster.address, storage=f"file://{folder / 'shared-storage'}", retries=1)
    queue = JobQueue(store, backend=backend, stop_grace=30)
    yield store, queue, backend
    queue.shutdown()
    store.close()


def _finished(store, queue, run_id, timeout=180) -> dict:
    assert queue.wait(run_id, timeout=timeout), f"run {run_id} did not end in {timeout} s"
    return store.get_run(run_id)


def test_every_node_is_on_loopback_and_the_cluster_is_described(ray_cluster, lab):
    _store, queue, backend = lab
    nodes = ray_cluster.nodes()
    assert len(nodes) == 2 and {n["NodeManagerAddress"] for n in nodes} == {LOOPBACK}
    if shutil.which("ss"):  # every port of every Ray process, not only the nodes' own addresses
        assert ray_cluster.listening() == {LOOPBACK}
    assert backend.describe() == "Ray cluster: 2 nodes, 0 GPUs, 2 CPUs"
    assert queue.gpus == []  # Ray places the jobs: nothing of this machine is leased


def test_a_spec_no_node_can_hold_is_refused_before_any_row(lab):
    store, queue, _ = lab
    before = len(store.list_runs())
    with pytest.raises(UserError, match=r"asks for 4 GPU.*no node of the cluster has that.*biggest node has 0 GPU"):
        queue.submit(tiny(gpus=4))
    assert len(store.list_runs()) == before


TINY_FLAGS = [
    "--model",
    "resnet20",
    "--model-kwargs",
    "depth=8,base_width=4",
    "--dataset",
    "synthetic",
    "--dataset-options",
    "n_train=600,n_test=100",
    "--batch-size",
    "50",
    "--learning-rate",
    "0.05",
    "--schedule",
    "cosine",
    "--augment",
    "flip_crop",
    "--epochs",
    "1",
]


def test_every_cli_command_that_runs_jobs_names_the_cluster_and_lets_it_go(ray_cluster, tmp_path, capsys):
    """train, finetune, resume, train-all and sweep open their queue on the cluster alike: each says where jobs
    run, in the same words, and lets the queue go when it ends (here: refused, as each job asks for more CPUs
    than any node has), releasing the store's job lock; nothing is queued."""
    from store.lock import held
    from workbench.cli.main import main

    db = tmp_path / "cli.db"
    with Store(db) as store:
        stopped = store.create_run("stopped", tiny().to_dict())
        store.set_status(stopped, "interrupted")
    preset = tmp_path / "one.toml"
    preset.write_text('[defaults]\nmodel = "lenet"\ndataset = "synthetic"\n[[runs]]\nname = "one"\n')
    commands = {
        "train": ["train", *TINY_FLAGS],
        "finetune": ["finetune"],
        "resume": ["resume", str(stopped)],
        "train-all": ["train-all", "--preset", str(preset)],
        "sweep": ["sweep", *TINY_FLAGS, "--seeds", "0,1"],
    }
    said = {}
    for name, argv in commands.items():
        assert main([*argv, "--db", str(db), "--ray", ray_cluster.address, "--ray-cpus", "4"]) == 2, name
        captured = capsys.readouterr()
        said[name] = [line for line in captured.out.splitlines() if line.startswith("Ray cluster:")]
        assert "asks for 4 CPU on one node, and no node of the cluster has that" in captured.err, (name, captured)
        assert not held(db), f"{name} left the store's job lock taken"
    assert said["train"] == ["Ray cluster: 2 nodes, 0 GPUs, 2 CPUs"], said
    assert all(lines == said["train"] for lines in said.values()), said
    with Store(db) as store:
        assert [(r["id"], r["status"]) for r in store.list_runs()] == [(stopped, "interrupted")]


@pytest.mark.slow  # ~17 s; by default the CLI and training on nodes are covered by the tests above
def test_a_sweep_from_the_cli_trains_on_the_cluster(ray_cluster, tmp_path, capsys):
    """`sweep --ray ADDRESS`: the sweep's runs go to the cluster's nodes and come back whole into the store."""
    from workbench.cli.main import main

    db = tmp_path / "sweep.db"
    argv = ["sweep", "onnodes", *TINY_FLAGS, "--seeds", "0,1", "--db", str(db), "--ray", ray_cluster.address]
    assert main(argv) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "Ray cluster: 2 nodes, 0 GPUs, 2 CPUs" in out and "sweep onnodes: 2 seeds = 2 runs" in out
    with Store(db) as store:
        runs = store.list_runs()
        assert [r["status"] for r in runs] == ["completed", "completed"], [r["error"] for r in runs]
        assert all(r["node"] and "sweep:onnodes" in r["tags"] for r in runs)
        assert all((store.run_dir(r["id"]) / "model.keras").exists() for r in runs)


def test_two_jobs_train_on_different_nodes_at_once_one_from_the_object_store(
    ray_cluster,
    lab,
    tmp_path,
    cache_dir,
):
    """Both land whole in the store, each on its own node (each node has one CPU), side by side. The second's
    data exists only where the app is when it is queued: by the time a node takes the job it is gone from the
    disk (both nodes are held until the app has put the decoded arrays in Ray's object store)."""
    import ray

    store, queue, backend = lab
    archive = tmp_path / "cifar10-mini.tar.gz"
    shutil.copy(FIXTURES / "cifar10-mini.tar.gz", archive)
    held = [ray_cluster.hold("wb_head"), ray_cluster.hold("wb_worker")]
    try:
        first = queue.submit(tiny(epochs=1, name="synthetic-here"))
        second = queue.submit(
            tiny(
                epochs=1,
                dataset="cifar10",
                dataset_options={},
                data_path=str(archive),
                val_size=100,
                name="from-object-store",
            )
        )
        wait_until(
            lambda: any(str(archive) in str(k) for k in backend.shipped_datasets()),
            "the dataset shipped",
            timeout=60,
            every=0.1,
        )
        archive.unlink()
    finally:
        for group in held:
            ray.util.remove_placement_group(group)
    runs = [_finished(store, queue, r) for r in (first, second)]
    for run in runs:
        assert run["status"] == "completed", run["error"]
        assert [e["epoch"] for e in store.epochs(run["id"])] == [1]
        assert sorted(store.prediction_splits(run["id"])) == ["test", "test_flip", "val", "val_flip"]
        assert run["test_accuracy"] is not None and run["params"] > 0 and run["phase"] is None
        assert (store.run_dir(run["id"]) / "model.keras").exists()  # mirrored from storage for Predict, Export
    assert store.load_logits(second, "test").shape == (200, 10) and "cifar10-mini" in runs[1]["dataset"]
    labels = {f"{LOOPBACK} {n['NodeID'][:8]}" for n in ray_cluster.nodes()}
    assert {r["node"] for r in runs} == labels  # one on each node...
    assert runs[0]["started_at"] < runs[1]["finished_at"] and runs[1]["started_at"] < runs[0]["finished_at"]  # together
    from workbench.views import live

    rows = live.jobs_rows(store, store.seen_runs(), nodes=True)
    assert {row[-1] for row in rows if row[0] in (first, second)} == labels


def test_a_job_that_raises_remotely_is_failed_with_its_traceback_tail(ray_cluster, tmp_path):
    """Nodes whose Python lacks the Keras backend the job asks for (JAX, through Ray's runtime environment):
    the job's import raises there, and the run is failed with the remote traceback's tail."""
    from workbench.jobs.ray_backend import RayBackend

    with Store(tmp_path / "workbench.db") as store:
        backend = RayBackend(store, ray_cluster.address, runtime_env={"env_vars": {"KERAS_BACKEND": "jax"}})
        queue = JobQueue(store, backend=backend)
        try:
            run_id = queue.submit(tiny(name="raises"))
            run = _finished(store, queue, run_id)
        finally:
            queue.shutdown()
    assert run["status"] == "failed", run["error"]
    # As a local job's failure reads (workbench.errors.failure_message): the exception, then its traceback's tail.
    assert run["error"].startswith("ModuleNotFoundError: No module named 'jax'"), run["error"]
    assert 'File "' in run["error"] and "import jax" in run["error"], run["error"]
    assert run["node"] and run["phase"] is None


def test_cancel_reaches_the_remote_job_within_a_batch(lab):
    store, queue, backend = lab
    run_id = queue.submit(tiny(epochs=30, name="cancelled"))
    wait_until(lambda: store.epochs(run_id), "the first epoch row", timeout=120, every=0.1)
    asked = time.monotonic()
    assert queue.cancel(run_id) is True
    run = _finished(store, queue, run_id, timeout=60)
    assert run["status"] == "cancelled" and run["error"] is None and run["epochs_done"] < 30
    assert time.monotonic() - asked < 30  # a batch, a save and the way back; not the 30 epochs
    assert backend.storage.epoch(run_id) == run["epochs_done"]  # resumable from storage, on any node


@pytest.mark.slow  # two job starts and a node's death: ~40-90 s here; `make test ARGS="-m slow"`
def test_a_job_killed_with_its_node_resumes_from_its_checkpoint_elsewhere(ray_cluster, lab):
    """The head's CPU is held, so the job starts on the worker node; after its first checkpoint the worker
    node's processes are killed (a machine that died). The run is interrupted with the reason, queued again
    and resumed on the head from storage: epochs before the checkpoint are kept, none is duplicated."""
    import ray

    total = 5
    store, queue, backend = lab
    held = ray_cluster.hold("wb_head")
    seen, watching = [], threading.Event()

    def watch():  # the statuses the run passes through (the interruption lasts until the retry starts)
        while not watching.is_set():
            run = store.get_run(run_id)
            if not seen or seen[-1] != (run["status"], run["error"]):
                seen.append((run["status"], run["error"]))
            time.sleep(0.02)

    try:
        run_id = queue.submit(tiny(epochs=total, name="node-dies"))
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        wait_until(
            lambda: backend.storage.epoch(run_id) >= 1, "the first checkpoint in storage", timeout=120, every=0.05
        )
        checkpoint = backend.storage.epoch(run_id)
        wait_until(lambda: len(store.epochs(run_id)) >= checkpoint, "its rows", timeout=10, every=0.05)
        kept = {e["epoch"]: e["logged_at"] for e in store.epochs(run_id)}
        worker_label = store.get_run(run_id)["node"]
        assert worker_label.endswith(ray_cluster.node_id("wb_worker")[:8])
        ray.util.remove_placement_group(held)
        held = None
        ray_cluster.cluster.remove_node(ray_cluster.worker, allow_graceful=False)
        run = _finished(store, queue, run_id, timeout=240)
    finally:
        watching.set()
        if held is not None:
            ray.util.remove_placement_group(held)
        ray_cluster.replace_worker()
    assert run["status"] == "completed", (run["error"], seen)
    assert any(
        status == "interrupted" or (status == "queued" and error and "left the cluster" in error)
        for status, error in seen
    ), seen
    assert run["attempt"] == 2 and run["node"] != worker_label
    epochs = store.epochs(run_id)
    assert [e["epoch"] for e in epochs] == list(range(1, total + 1))
    assert checkpoint < total - 1, "the node died too late to show a resume"
    for epoch in range(1, checkpoint + 1):  # up to the checkpoint: the rows of the first attempt, not redone
        assert epochs[epoch - 1]["logged_at"] == kept[epoch]


@pytest.mark.slow  # an app, a browser and a job: ~60 s or more here
@pytest.mark.browser
def test_the_app_on_the_cluster_through_the_browser(ray_cluster, tmp_path, browser):
    """`app.py --ray ADDRESS`: the header names the cluster; a run queued from the Train tab trains on a node,
    the live panel follows it to the end and the jobs table says which node it ran on."""
    from conftest import AppServer

    server = AppServer(tmp_path, "--ray", ray_cluster.address)
    try:
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        page.goto(server.url)
        page.locator("#train-button").wait_for()
        _wait_text(page.locator("#header"), r"Jobs run on the Ray cluster: 2 nodes, 0 GPUs, 2 CPUs")
        page.locator("#field-dataset input").click()
        page.locator("#field-dataset input").fill("synthetic")
        page.get_by_role("option", name="synthetic", exact=True).click()
        for field, value in (
            ("data_path", ""),
            ("dataset_options", "n_train=300,n_test=100"),
            ("model_kwargs", "depth=8,base_width=4"),
            ("epochs", 3),
            ("batch_size", 50),
            ("name", "cluster-run"),
        ):
            page.locator(f"#field-{field} input, #field-{field} textarea").first.fill(str(value))
        page.locator("#field-name input, #field-name textarea").first.press("Tab")
        page.locator("#train-button").click()
        _wait_text(page.locator("#train-message"), r"Queued run 1: cluster-run")
        _wait_text(page.locator("#live-panel"), r"running · epoch [1-9]", timeout=120)
        _wait_text(page.locator("#live-panel"), r"completed", timeout=180)
        labels = "|".join(f"{LOOPBACK} {n['NodeID'][:8]}" for n in ray_cluster.nodes())
        _wait_text(page.locator("#jobs-table"), rf"cluster-run[\s\S]*({labels})", timeout=30)
        page.close()
    finally:
        server.stop()
    with Store(server.db) as store:
        run = store.get_run(1)
        assert run["status"] == "completed" and run["node"] and [e["epoch"] for e in store.epochs(1)] == [1, 2, 3]


def test_a_study_on_the_cluster_prunes_a_trial_on_its_node(lab):
    """A study's trials go to the cluster like any job; the pruner's decision reaches the remote actor, which
    stops after its epoch: the run is pruned, its epochs and checkpoint back in the store."""
    import optuna

    from workbench.constants import RunStatus
    from workbench.jobs.study import StudyDriver
    from workbench.specs.search import Search

    store, queue, _ = lab
    base = tiny(epochs=5, model="lenet", model_kwargs={}, augment=())
    search = Search.from_values(
        "onnodes", base, space="learning_rate=log(1e-6,0.2)", trials=2, pruner="median", seed=0, parallel=1
    )
    driver = StudyDriver.create(store, queue, search)
    study = optuna.load_study(study_name="onnodes", storage=store.optuna_url())
    study.enqueue_trial({"learning_rate": 0.05})
    study.enqueue_trial({"learning_rate": 1e-6})
    driver.poll = 0.1
    assert driver.start().wait(400)
    runs = [store.get_run(run_id) for run_id in store.study_trials("onnodes").values()]
    assert [r["status"] for r in runs] == [RunStatus.COMPLETED, RunStatus.PRUNED], [r["error"] for r in runs]
    assert all(r["node"] for r in runs) and 1 <= runs[1]["epochs_done"] < 5
    assert (store.run_dir(runs[1]["id"]) / "model.keras").exists()
    states = [t.state for t in optuna.load_study(study_name="onnodes", storage=store.optuna_url()).trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]
