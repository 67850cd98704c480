"""What the Errors tab's count line says when a selection holds no image: what is true of the images the
filters keep, not a fixed "every image is right" (issue 23: A gets all of a cat->dog cell wrong, and
"A right, B wrong" said every image was right). No browser: the tab's handler is called in-process."""

import shutil
from types import SimpleNamespace

import gradio as gr
import numpy as np
from conftest import FIXTURES, completed_run

from store import Store
from workbench.constants import CIFAR10_CLASSES
from workbench.data.datasets import load_dataset
from workbench.inspect import analysis
from workbench.inspect.sources import Source
from workbench.specs.run import RunSpec
from workbench.ui.tabs import errors


def test_a_compared_cell_says_what_a_gets_wrong_there(tmp_path, cache_dir):
    data = tmp_path / "cifar10-mini.tar.gz"
    shutil.copy(FIXTURES / "cifar10-mini.tar.gz", data)
    y = load_dataset("cifar10", str(data)).y_test
    rng = np.random.default_rng(0)
    with Store(tmp_path / "runs" / "workbench.db") as store:
        for seed, skill in ((0, 1.0), (1, 2.0)):
            spec = RunSpec(model="resnet20", data_path=str(data), val_size=100, epochs=2, seed=seed, name=f"m{seed}")
            completed_run(store, spec.name, spec.to_dict(), rng=rng, skill=skill, logits={"test": y})
        matrix = analysis.confusion_matrix(y, store.load_logits(1, "test").argmax(1), 10)
        with gr.Blocks():
            tab = errors.create_errors_tab(SimpleNamespace(store=store))
        handlers = errors._Handlers(SimpleNamespace(store=store), tab.view)
        off = matrix - np.diag(np.diag(matrix))
        t, p = np.unravel_index(off.argmax(), off.shape)
        true, predicted = CIFAR10_CLASSES[t], CIFAR10_CLASSES[p]
        shown = handlers.show(1, "run:1", "test", true, predicted, "confident", 0, "a_right_b_wrong", "run:2")
        assert shown[tab.view.gallery] == []
        assert shown[tab.view.count] == (
            f"No images match: in this cell (true {true}, predicted {predicted} by A), A gets all {off[t, p]} "
            "images wrong, so none is “A right, B wrong”."
        )
        assert "right." not in shown[tab.view.count]
        # The diagonal cell: A is right on every image of it, so none is A's mistake.
        shown = handlers.show(1, "run:1", "test", true, true, "confident", 0, "off", None)
        assert shown[tab.view.count] == (
            f"No images match: in this cell (true {true}, predicted {true} by A), "
            f"A gets all {matrix[t, t]} images right."
        )


def _source(name, predicted, labels):
    return Source("run", 1, name, np.eye(3)[predicted], np.asarray(labels), ["cat", "dog", "ship"], "test")


def test_each_empty_comparison_names_the_fact_that_empties_it():
    labels = [0, 0, 1, 1, 2]
    a = _source("a", [0, 1, 1, 0, 2], labels)  # right, wrong, right, wrong, right
    b = _source("b", [0, 0, 1, 1, 2], labels)  # always right

    def message(true="any", predicted="any", mode="off", b_source=b):
        chosen = errors.Selection(a, b_source, np.arange(0), true, predicted, "confident", 0, mode)
        return errors.no_match_message(chosen)

    assert message("cat", "dog", "a_right_b_wrong") == (
        "No images match: in this cell (true cat, predicted dog by A), A gets the one image wrong, "
        "so none is “A right, B wrong”."
    )
    assert message("dog", mode="a_right_b_wrong") == (
        "No images match: among the dog images, B is right on the one image A gets right, "
        "so none is “A right, B wrong”."
    )
    assert message(predicted="ship", mode="b_right_a_wrong") == (
        "No images match: among the images A predicts as ship, A gets the one image right, "
        "so none is “B right, A wrong”."
    )
    assert message(mode="both_wrong") == (
        "No images match: on the test split, B is right on all 2 images A gets wrong, so none is “both wrong”."
    )
    assert message("ship", "cat", "both_wrong") == (
        "No images match: there are no images in this cell (true ship, predicted cat by A)."
    )
    assert message("ship", b_source=None) == "No images match: among the ship images, A gets the one image right."
