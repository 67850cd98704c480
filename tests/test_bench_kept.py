"""bench/kept.py, the `--keep DIR` of the hours-long benchmarks: a second sitting resumes the run the first one
left stopped, reuses what completed, and refuses a folder trained with other settings."""

import threading

import pytest
from conftest import wait_until

from bench import kept
from workbench.specs.run import RunSpec

SPEC = RunSpec.from_dict(
    dict(
        model="lenet",
        dataset="synthetic",
        dataset_options={"n_train": 300, "n_test": 100},
        batch_size=50,
        learning_rate=0.05,
        schedule="cosine",
        epochs=3,
        gpus=0,
    )
)


def test_a_kept_store_resumes_a_stopped_run_then_reuses_it_and_refuses_other_settings(tmp_path, capsys):
    with kept.bench_store(tmp_path, "b") as (store, queue):  # the first sitting, stopped after an epoch

        def stop_after_the_first_epoch():
            wait_until(lambda: store.list_runs() and store.epochs(store.list_runs()[0]["id"]), "an epoch", timeout=120)
            queue.cancel(store.list_runs()[0]["id"])

        stopper = threading.Thread(target=stop_after_the_first_epoch)
        stopper.start()
        with pytest.raises(SystemExit, match="cancelled"):
            kept.train(queue, store, SPEC, "run")
        stopper.join()
        first = store.list_runs()[0]
        assert first["name"] == "run" and 1 <= first["epochs_done"] < 3
    with kept.bench_store(tmp_path, "b") as (store, queue):  # the second sitting: the same run, resumed
        run = kept.train(queue, store, SPEC, "run")
        assert run["id"] == first["id"] and run["status"] == "completed" and run["epochs_done"] == 3
        assert [e["epoch"] for e in store.epochs(run["id"])] == [1, 2, 3]
        assert f"resumed from epoch {first['epochs_done']}" in capsys.readouterr().out
        assert kept.ensemble(store, "e", [run["id"]]) == kept.ensemble(store, "e", [run["id"]])
    with kept.bench_store(tmp_path, "b") as (store, queue):  # the third: nothing left to train
        again = kept.train(queue, store, SPEC, "run")
        assert again["id"] == run["id"] and again["test_accuracy"] == run["test_accuracy"]
        assert "(kept)" in capsys.readouterr().out
        with pytest.raises(SystemExit, match="other settings: give another --keep folder"):
            kept.train(queue, store, SPEC.replace(epochs=4), "run")
        assert len(store.list_runs()) == 1 and len(store.list_ensembles()) == 1
