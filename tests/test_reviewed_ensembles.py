"""A saved ensemble's test accuracy on the reviewed test set (issue 24, point 4), beside the original in the
leaderboard: its members' stored test logits combined as saved, the reviews applied (label errors dropped,
relabelled images with their new class). The members' logits are made up (no training): a model that knows the
true classes of most images, stored against labels with planted errors."""

import numpy as np
import pytest
from scipy.special import softmax

from store import Store
from workbench.constants import Verdict
from workbench.data.reviewed import dataset_identity
from workbench.inspect.reviewed import ensembles_with_reviewed
from workbench.specs.run import RunSpec
from workbench.ui.tabs.runs_actions import leaderboard

N, K = 300, 4


def _member(store, name, truth, given, seed):
    rng = np.random.default_rng(seed)
    spec = RunSpec(model="lenet", dataset="synthetic", dataset_options={"n_test": N}, epochs=1, name=name)
    run_id = store.create_run(name, spec.to_dict())
    store.set_status(run_id, "running")
    for split in ("val", "test"):
        logits = rng.normal(0, 1, (N, K)).astype(np.float32)
        logits[np.arange(N), truth] += 2.0
        store.save_logits(run_id, split, logits, given)
    test = store.load_logits(run_id, "test")
    store.update_run(run_id, test_accuracy=float((test.argmax(1) == given).mean()))
    store.set_status(run_id, "completed")
    return run_id


def test_a_saved_ensemble_gets_its_reviewed_test_accuracy_in_the_leaderboard(tmp_path):
    rng = np.random.default_rng(1)
    truth = rng.integers(0, K, N)
    given = truth.copy()
    wrong = rng.choice(N, 30, replace=False)
    given[wrong] = (truth[wrong] + 1) % K
    with Store(tmp_path / "workbench.db") as store:
        a, b = _member(store, "a", truth, given, 2), _member(store, "b", truth, given, 3)
        probs = softmax(store.load_logits(a, "test"), axis=1) + softmax(store.load_logits(b, "test"), axis=1)
        predicted = probs.argmax(1)
        ensemble_id = store.save_ensemble(
            "pair", "mean", [a, b], [1.0, 1.0], test_accuracy=float((predicted == given).mean())
        )
        assert ensembles_with_reviewed(store, store.list_ensembles())[0]["reviewed_test_accuracy"] is None
        identity = dataset_identity("synthetic", Store.labels_hash(given))
        store.register_review_part(identity, "synthetic", "test", given, num_classes=K)
        for idx in wrong[:10]:
            store.save_review(identity, "test", int(idx), Verdict.LABEL_ERROR, given=int(given[idx]))
        for idx in wrong[10:]:
            store.save_review(identity, "test", int(idx), Verdict.RELABEL, given=int(given[idx]), label=int(truth[idx]))
        keep = ~np.isin(np.arange(N), wrong[:10])
        expected = float((predicted[keep] == truth[keep]).mean())
        found = ensembles_with_reviewed(store, store.list_ensembles())[0]
        assert found["reviewed_test_accuracy"] == pytest.approx(expected)
        assert found["reviewed_test_images"] == N - 10
        assert expected > found["test_accuracy"] + 0.05  # the planted errors cost the original figure
        row = next(r for r in leaderboard(store) if r["Kind"] == "ensemble" and r["ID"] == ensemble_id)
        assert row["Reviewed test %"] == pytest.approx(100 * expected, abs=0.01)
        assert row["Test acc %"] == pytest.approx(100 * found["test_accuracy"], abs=0.01)  # the original stays
