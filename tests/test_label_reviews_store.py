"""Label reviews in the store (issue 24): refused when they name an image that is not there or another dataset's
split, kept through a killed process, and none lost when two processes review at once."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from store import Store
from store.reviews import reviews_fingerprint
from workbench.constants import Verdict
from workbench.data.reviewed import dataset_identity, reviewed_labels, training_changes
from workbench.errors import UserError

LABELS = np.arange(200) % 10
DATASET = dataset_identity("synthetic", Store.labels_hash(LABELS))


def _register(store):
    store.register_review_part(DATASET, "synthetic", "test", LABELS, num_classes=10)


def test_bad_reviews_are_refused_with_what_to_do(store):
    with pytest.raises(UserError, match="open its label issues first"):
        store.save_review(DATASET, "test", 3, Verdict.LABEL_ERROR, given=3)
    _register(store)
    with pytest.raises(UserError, match=r"no image 200 in the test split .* 0 to 199"):
        store.save_review(DATASET, "test", 200, Verdict.LABEL_ERROR, given=0)
    with pytest.raises(UserError, match=r"no image -1"):
        store.save_review(DATASET, "test", -1, Verdict.LABEL_ERROR, given=9)
    with pytest.raises(UserError, match="labelled 3, not 4: this review is for another dataset's split"):
        store.save_review(DATASET, "test", 3, Verdict.CORRECT, given=4)
    with pytest.raises(UserError, match="has no train split known"):
        store.save_review(DATASET, "train", 3, Verdict.CORRECT, given=3)
    with pytest.raises(UserError, match="relabel needs a class from 0 to 9 other than the given 3"):
        store.save_review(DATASET, "test", 3, Verdict.RELABEL, given=3, label=3)
    with pytest.raises(UserError, match="verdict"):
        store.save_review(DATASET, "test", 3, "wrong-ish", given=3)
    with pytest.raises(UserError, match="differ from those its reviews were made on"):
        store.register_review_part(DATASET, "synthetic", "test", LABELS[::-1], num_classes=10)
    assert store.reviews(DATASET) == []


def test_a_later_verdict_replaces_the_earlier_and_what_reviews_change(store):
    _register(store)
    store.save_review(DATASET, "test", 5, Verdict.LABEL_ERROR, given=5, by="a")
    store.save_review(DATASET, "test", 5, Verdict.RELABEL, given=5, label=2, by="b")
    store.save_review(DATASET, "test", 7, Verdict.LABEL_ERROR, given=7)
    store.save_review(DATASET, "test", 8, Verdict.UNSURE, given=8)
    rows = store.reviews(DATASET, "test")
    assert [(r["idx"], r["verdict"], r["label"], r["reviewed_by"]) for r in rows] == [
        (5, "relabel", 2, "b"),
        (7, "label error", None, ""),
        (8, "unsure", None, ""),
    ]
    labels, keep = reviewed_labels(LABELS, rows)
    assert labels[5] == 2 and not keep[7] and keep.sum() == 199 and labels[8] == 8
    drop, relabel = training_changes(rows, "exclude")
    assert drop.tolist() == [5, 7] and relabel == {}
    drop, relabel = training_changes(rows, "relabel")
    assert drop.tolist() == [7] and relabel == {5: 2}
    before = reviews_fingerprint(rows)
    store.clear_review(DATASET, "test", 8)
    assert reviews_fingerprint(store.reviews(DATASET)) != before


WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from store import Store
    db, first, count, kill = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "kill"
    store = Store(db)
    for idx in range(first, first + count):
        store.save_review({dataset!r}, "test", idx, "label error", given=idx % 10, by=f"writer{{first}}")
    print("written", flush=True)
    if kill:
        os.kill(os.getpid(), signal.SIGKILL)  # no close, no clean exit: what a crashed app leaves
    """
).format(dataset=DATASET)


def _writer(db, first, count, kill=False):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(first), str(count), "kill" if kill else "exit"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_reviews_survive_a_killed_process_and_two_writers_lose_nothing(tmp_path):
    db = tmp_path / "runs" / "workbench.db"
    db.parent.mkdir()
    with Store(db) as store:
        _register(store)
    killed = _writer(db, 0, 30, kill=True)
    assert killed.wait(60) == -signal.SIGKILL and "written" in killed.stdout.read()
    # two processes at once, 80 images each, on one store: every verdict kept
    writers = [_writer(db, 40, 80), _writer(db, 120, 80)]
    assert [w.wait(120) for w in writers] == [0, 0]
    with Store(db) as store:
        rows = store.reviews(DATASET, "test")
    assert [r["idx"] for r in rows] == list(range(30)) + list(range(40, 200))
    assert {r["reviewed_by"] for r in rows} == {"writer0", "writer40", "writer120"}


def test_an_image_folder_keeps_its_file_names_through_the_decode_cache(tmp_path, cache_dir):
    from PIL import Image

    from workbench.data.datasets import load_dataset

    for part, count in (("train", 3), ("test", 2)):
        for cls in ("bird", "cat"):
            folder = tmp_path / "pics" / part / cls
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (8, 8), (10 * i, 0, 0)).save(folder / f"{i:04d}.png")
    first = load_dataset("folder", tmp_path / "pics", image_size=32)
    again = load_dataset("folder", tmp_path / "pics", image_size=32)  # from the decode cache
    assert (
        first.test_files
        == again.test_files
        == ("test/bird/0000.png", "test/bird/0001.png", "test/cat/0000.png", "test/cat/0001.png")
    )
    assert [first.class_names[y] for y in first.y_test] == [name.split("/")[1] for name in first.test_files]
    assert len(again.train_files) == 6 and again.train_files[3] == "train/cat/0000.png"
