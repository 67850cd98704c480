"""A cross-validation request's out-of-fold matrix as a source (issue 24, point 2): listed in the Errors tab's
sources once its K runs completed, on the training split only, its images the training split's in the stitched
matrix's row order (each fold's rows are exactly the images that fold's run held out and predicted), and the
label review ranks it.

Synthetic stripes (4 classes, 200 training images, a 150-image `train_subset` so the rows are a seeded subset's
positions, not the dataset's), two folds. The default tests store each fold's held-out logits as its job does
(for the images `prepare_data` holds out of that fold's own spec, with their labels) without training; the slow
one trains the two folds (a depth-8 ResNet of width 4, one epoch each: about 2 minutes on a loaded 2-core
machine) and checks the same.
"""

import numpy as np
import pytest

from workbench.data.split import OOF, fold_positions, prepare_data
from workbench.ensemble.lab import Lab
from workbench.errors import UserError
from workbench.inspect import crossval
from workbench.inspect import label_quality as lq
from workbench.inspect import sources as sv
from workbench.jobs.queue import JobQueue
from workbench.specs.crossval import CrossVal, submit_crossval
from workbench.specs.run import RunSpec
from workbench.ui.tabs.errors import split_update

OPTIONS = {"n_train": 200, "n_test": 80, "num_classes": 4, "label_noise": 0.05}
SPEC = dict(
    model="resnet20",
    model_kwargs={"depth": 8, "base_width": 4},
    dataset="synthetic",
    dataset_options=OPTIONS,
    train_subset=150,
    batch_size=50,
    learning_rate=0.1,
    epochs=1,
)


def _fold_run(store, spec: RunSpec, seed: int) -> int:
    """A completed run of `spec` with its held-out fold's logits stored as its job stores them: for the images
    its own prepared data holds out, against their labels (a model right on about 80 % of them); made-up
    validation and test logits beside them."""
    held = prepare_data(spec, stats=False)
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, (len(held.y_holdout), 4)).astype(np.float32)
    right = rng.random(len(held.y_holdout)) < 0.8
    logits[np.arange(len(logits)), np.where(right, held.y_holdout, (held.y_holdout + 1) % 4)] += 3
    run_id = store.create_run(spec.display_name(), spec.to_dict(), tags=["cv:tiny"] if held.y_holdout.size else [])
    store.set_status(run_id, "running")
    if held.y_holdout.size:
        store.save_logits(run_id, OOF, logits, held.y_holdout)
    y_test = np.asarray(held.dataset.y_test)  # every run, a fold too, stores its val and test logits
    store.save_logits(run_id, "test", rng.normal(0, 1, (len(y_test), 4)), y_test)
    store.save_logits(run_id, "val", rng.normal(0, 1, (len(held.y_val), 4)), held.y_val)
    store.set_status(run_id, "completed")
    return run_id


@pytest.fixture(scope="module")
def request_done(tmp_path_factory):
    """A store with one completed 2-fold request `tiny` (its runs' stored logits made up, not trained) and one
    ordinary run; the source list while the second fold was still queued."""
    from store import Store

    store = Store(tmp_path_factory.mktemp("cv-source") / "runs" / "workbench.db")
    specs = CrossVal("tiny", RunSpec.from_dict(SPEC), folds=2).validate()
    run_ids = [_fold_run(store, specs[0], 0)]
    queued = store.create_run(specs[1].display_name(), specs[1].to_dict(), tags=["cv:tiny"])
    listed_early = [key for _, key in sv.source_choices(store, cv=True)]
    store.delete_run(queued)
    run_ids.append(_fold_run(store, specs[1], 1))
    plain = _fold_run(store, RunSpec.from_dict({**SPEC, "name": "plain"}), 2)
    yield store, run_ids, plain, listed_early
    store.close()


def _rows_match_folds(store, run_ids):
    """The cv source's rows against what each fold's job held out (its own spec drops the fold from its
    training images): the same images in the same order, with the labels it stored."""
    cache: dict = {}
    source = sv.load_source(store, Lab(store), "cv:tiny", "train", cache)
    assert source.images_error is None and source.kind == "cv" and source.key == "cv:tiny"
    images = sv.split_images(store, source.image_run, source.split, cache)
    oof = crossval.stitch(store, "tiny")
    assert len(images) == len(source.labels) == 150 and np.array_equal(source.labels, oof.labels)
    assert np.array_equal(source.probs.argmax(1), oof.logits.argmax(1))
    folds = fold_positions(150, 2, 0)
    for fold, run_id in enumerate(run_ids):
        held = prepare_data(RunSpec.from_dict(store.get_run(run_id)["spec"]), stats=False)
        assert len(held.x_train) == 150 - len(folds[fold])
        assert np.array_equal(images[folds[fold]], held.x_holdout)
        assert np.array_equal(source.labels[folds[fold]], held.y_holdout)
        assert np.array_equal(source.labels[folds[fold]], store.load_labels(run_id, OOF))
    # the folds interleave: row order is the training split's, not fold by fold
    assert not np.array_equal(images[: len(folds[0])], images[folds[0]])
    return source


def test_a_complete_request_is_a_source_of_the_errors_tab_only(request_done):
    store, run_ids, plain, listed_early = request_done
    assert "cv:tiny" not in listed_early  # queued, not completed: not yet a source
    keys = [key for _, key in sv.source_choices(store, cv=True)]
    assert keys[-1] == "cv:tiny" and f"run:{plain}" in keys
    assert "cv:tiny" not in [key for _, key in sv.source_choices(store)]  # the Predict tab's list: no cv
    label = dict((k, text) for text, k in sv.source_choices(store, cv=True))["cv:tiny"]
    assert "training split" in label and str(run_ids[0]) in label


def test_the_split_follows_the_source_and_a_mismatch_is_refused(request_done):
    store, _, plain, _ = request_done
    assert sv.splits_of("cv:tiny") == ("train",) and sv.splits_of(f"run:{plain}") == ("val", "test")
    split, update = split_update("cv:tiny", "test")
    assert split == "train" and update["choices"] == [("training (out of fold)", "train")]
    split, update = split_update(f"run:{plain}", "train")
    assert split == "test" and [v for _, v in update["choices"]] == ["test", "val"]
    with pytest.raises(UserError, match="choose the training split for it"):
        sv.load_source(store, Lab(store), "cv:tiny", "test")
    with pytest.raises(UserError, match="not out-of-sample"):
        sv.load_source(store, Lab(store), f"run:{plain}", "train")
    with pytest.raises(UserError, match="no cross-validation request 'nope'"):
        sv.load_source(store, Lab(store), "cv:nope", "train")


def test_each_row_shows_the_image_its_fold_held_out_and_predicted(request_done):
    store, run_ids, _, _ = request_done
    _rows_match_folds(store, run_ids)


def test_a_changed_dataset_is_reported_not_shown(request_done):
    store, run_ids, _, _ = request_done
    spec = store.get_run(run_ids[1])["spec"]
    options = {**spec["dataset_options"], "label_noise": 0.2}  # other labels for the same images
    store.update_run(run_ids[1], spec={**spec, "dataset_options": options})
    try:
        source = sv.load_source(store, Lab(store), "cv:tiny", "train", {})
        assert source.images_error and "do not match its stored predictions" in source.images_error
    finally:
        store.update_run(run_ids[1], spec=spec)


@pytest.mark.slow
def test_trained_folds_give_a_source_whose_rows_are_their_held_out_images(tmp_path):
    from store import Store

    with Store(tmp_path / "runs" / "workbench.db") as store:
        queue = JobQueue(store, devices=[], isolate=False)
        try:
            run_ids = submit_crossval(queue, CrossVal("tiny", RunSpec.from_dict(SPEC), folds=2))
            assert "cv:tiny" not in [key for _, key in sv.source_choices(store, cv=True)]
            for run_id in run_ids:
                assert queue.wait(run_id, timeout=600)
                assert store.get_run(run_id)["status"] == "completed", store.get_run(run_id)["error"]
        finally:
            queue.shutdown()
        assert "cv:tiny" in [key for _, key in sv.source_choices(store, cv=True)]
        source = _rows_match_folds(store, run_ids)
        issues = lq.label_issues(store, Lab(store), "cv:tiny", "train")
        assert np.array_equal(issues.labels, source.labels) and len(issues.order()) == 150


def test_label_review_ranks_the_training_split_with_the_same_images(request_done):
    store, _, _, _ = request_done
    cache: dict = {}
    issues = lq.map_rows(store, lq.label_issues(store, Lab(store), "cv:tiny", "train", cache), cache)
    assert issues.split == "train" and issues.part == "train" and len(issues.order()) == 150
    assert issues.official is not None and len(set(issues.official.tolist())) == 150
    source = sv.load_source(store, Lab(store), "cv:tiny", "train", cache)
    assert np.array_equal(
        lq.issue_images(store, issues, cache), sv.split_images(store, source.image_run, "train", cache)
    )
    assert np.array_equal(issues.labels, source.labels)
