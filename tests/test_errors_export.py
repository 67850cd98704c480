"""The Errors tab's exported PNG (issue 23): its images in the order the gallery shows (the chosen order,
with or without a second source B to compare), and its title saying "test split" in letters a reader can
tell apart. No browser: the tab's handler is called in-process with a spy on the grid writer."""

import shutil
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from conftest import FIXTURES, completed_run
from PIL import Image, ImageFont

from store import Store
from workbench.data.datasets import load_dataset
from workbench.inspect import analysis, gallery
from workbench.specs.run import RunSpec
from workbench.ui.tabs import errors


@pytest.fixture
def tab(tmp_path, cache_dir):
    """The Errors tab's view and handlers over two runs with test logits for the fixture's images."""
    data = tmp_path / "cifar10-mini.tar.gz"
    shutil.copy(FIXTURES / "cifar10-mini.tar.gz", data)
    y = load_dataset("cifar10", str(data)).y_test
    rng = np.random.default_rng(0)
    with Store(tmp_path / "runs" / "workbench.db") as store:
        for seed, skill in ((0, 1.0), (1, 0.5)):
            spec = RunSpec(model="resnet20", data_path=str(data), val_size=100, epochs=2, seed=seed, name=f"m{seed}")
            completed_run(store, spec.name, spec.to_dict(), rng=rng, skill=skill, logits={"test": y})
        with gr.Blocks():
            view = errors.create_errors_tab(SimpleNamespace(store=store)).view
        yield view, errors._Handlers(SimpleNamespace(store=store), view)


@pytest.mark.parametrize("sort", [value for _, value in errors.SORTS])
@pytest.mark.parametrize("mode", ["off", "b_right_a_wrong", "a_right_b_wrong"])
def test_the_export_holds_the_galleries_images_in_the_chosen_order(tab, monkeypatch, sort, mode):
    view, handlers = tab
    written = {}

    def spy(images, indices, *args, **kwargs):
        written.update(indices=np.asarray(indices).tolist(), title=kwargs["title"])
        return real(images, indices, *args, **kwargs)

    real = gallery.export_grid
    monkeypatch.setattr(gallery, "export_grid", spy)
    filters = ("run:1", "test", "any", "any", sort, 5, mode, "run:2")
    file_update, message = handlers.export(*filters)
    assert message.startswith("Exported ") and file_update["visible"]
    a, b = handlers.load("run:1", "test"), handlers.load("run:2", "test")
    if mode == "off":  # the picking function, by hand: A's mistakes in the chosen order
        expected = analysis.misclassified(a.probs, a.labels, sort=sort, seed=5)
    else:
        wrong = b if mode == "a_right_b_wrong" else a
        chosen = analysis.compare(a.probs, b.probs, a.labels)[mode]
        expected = analysis.ordered(chosen, wrong.probs, a.labels, sort=sort, seed=5)
    assert len(expected) > 1 and written["indices"] == expected.tolist()
    assert written["indices"] != sorted(written["indices"]) or sort == "random"  # not index order
    # The gallery's first page shows the same images in the same order.
    shown = handlers.show(1, *filters)[view.gallery]
    pictures = handlers.images(a)
    assert len(shown) == min(errors.PER_PAGE, len(expected))
    for (picture, _), index in zip(shown, expected):
        assert np.array_equal(np.asarray(picture)[::3, ::3], pictures[index])  # shown at 3x, nearest-neighbour
    assert "test split · " in written["title"] and "testsplit" not in written["title"]
    if mode != "off":
        assert dict((v, label) for label, v in errors.COMPARE)[mode] in written["title"]
    label = dict((v, label) for label, v in errors.SORTS)[sort]
    assert label in written["title"]
    with Image.open(file_update["value"]) as png:
        assert png.format == "PNG"


def test_the_title_font_gives_a_space_room():
    """At Pillow's own 10 px a space was 2 px wide and "test split" read as one word."""
    font = ImageFont.load_default(gallery.TITLE_SIZE)
    assert font.getlength("test split") - font.getlength("testsplit") >= 3
