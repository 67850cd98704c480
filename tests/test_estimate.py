"""Time estimates before queueing, from a real store: the store's history of runs like it, else a rough
figure that says where it comes from, never a silent blank; and the Train form's recipes that fit the
device (on a CPU: one that finishes in minutes, the classic one a click away)."""

import pytest

from models import create_model, list_models
from workbench.jobs.costs import BACKBONE_MMACS, MODEL_MMACS, count_mmacs
from workbench.jobs.estimate import estimate
from workbench.specs.finetune import BACKBONES, FinetuneSpec
from workbench.ui.tabs.train import recipes
from workbench.views.live import estimate_text

QUICK, CLASSIC = recipes("")["quick"], recipes("")["classic"]


def _finished(store, spec, epoch_seconds, *, device="CPU:0", train_images=14976, eval_seconds=None):
    """A completed run as `fit` leaves it: its epochs' seconds, images per epoch, the final evaluation."""
    run_id = store.create_run(spec.display_name(), spec.to_dict(), kind=spec.kind)
    for epoch, seconds in enumerate(epoch_seconds, 1):
        store.log_epoch(run_id, epoch, loss=1.0, val_accuracy=0.5, seconds=seconds)
    store.update_run(run_id, device=device, train_images=train_images, eval_steps=238, eval_seconds=eval_seconds)
    store.set_status(run_id, "completed")
    return run_id


def test_the_cost_table_lists_every_model_as_counted():
    assert set(MODEL_MMACS) == set(list_models()) and set(BACKBONE_MMACS) == set(BACKBONES)
    for name in ("lenet", "resnet20"):
        assert count_mmacs(create_model(name)) == pytest.approx(MODEL_MMACS[name], abs=0.05)


def test_without_history_a_labelled_rough_estimate(store):
    quick = estimate(QUICK, store, gpu_count=0)
    assert quick.rough and quick.source.startswith("Rough: no run has finished on this store's CPU yet")
    assert quick.images == 14976 and quick.epochs == 5  # 15,000-image subset, whole batches of 128
    assert 2 * 60 < quick.seconds < 15 * 60
    text = estimate_text(quick)
    assert text.startswith("**Time on this CPU: ~") and "(rough)** — 5 epochs of 14,976 images" in text
    assert "long for a CPU" not in text
    classic = estimate(CLASSIC, store, gpu_count=0)
    assert classic.seconds > 5 * 3600 and "Quick CPU recipe" in estimate_text(classic)
    on_gpu = estimate(QUICK, store, gpu_count=1)
    assert on_gpu.seconds is None and "no run has finished on a GPU" in estimate_text(on_gpu)
    folder = estimate(QUICK.replace(dataset="folder", data_path="/data/pets"), store, gpu_count=0)
    assert folder.seconds is None and "folder dataset's size" in estimate_text(folder)
    finetune = estimate(FinetuneSpec(), store, gpu_count=0)
    assert finetune.rough and finetune.seconds > quick.seconds


def test_history_of_the_same_model_here_gives_the_estimate(store):
    # Epoch 1 traces the graph (slower); the others take 50 s for 14,976 images.
    _finished(store, QUICK, [80.0, 50.0, 50.0, 52.0, 48.0], eval_seconds=40.0)
    _finished(store, QUICK.replace(batch_size=64), [10.0, 10.0])  # another batch size: not comparable
    _finished(store, QUICK, [5.0, 5.0], device="GPU:0")  # another device: not comparable
    est = estimate(QUICK, store, gpu_count=0)
    assert not est.rough and est.source.startswith("Measured: 1 earlier resnet20 run like it here")
    assert est.per_image == pytest.approx(50.0 / 14976)
    assert est.evaluation == pytest.approx(40.0)  # the same evaluation size: its measured time
    assert est.seconds == pytest.approx(15 + 5 * 50.0 + 40.0)
    longer = estimate(QUICK.replace(epochs=10, name="other name"), store, gpu_count=0)
    assert longer.seconds == pytest.approx(15 + 10 * 50.0 + 40.0)
    assert estimate_text(est).startswith("**Time on this CPU: ~5m 05s** — ")
    # Another model on this CPU: scaled from the nearest measured one by multiply-adds, and said so.
    nin = estimate(QUICK.replace(model="nin"), store, gpu_count=0)
    assert nin.rough and nin.source.startswith("Rough: no run like it has finished here yet; scaled from run 1")
    assert nin.per_image == pytest.approx(50.0 / 14976 * (222.5 / 40.6) ** 0.72)


def test_the_train_form_starts_with_the_recipe_that_fits_the_device(store):
    import gradio as gr

    from workbench.ui.context import AppContext
    from workbench.ui.tabs.train import create_train_tab

    assert (QUICK.model, QUICK.epochs, QUICK.train_subset, QUICK.schedule, QUICK.name) == (
        "resnet20",
        5,
        15000,
        "cosine",
        "",
    )
    assert (CLASSIC.epochs, CLASSIC.schedule, CLASSIC.train_subset) == (200, "step", 0)
    for gpus, epochs in (([], 5), (["/device:GPU:0"], 200)):
        with gr.Blocks() as demo:
            tab = create_train_tab(AppContext(store=store, queue=None, gpu_names=gpus))
        assert tab.form["epochs"].value == epochs
        box = next(b for b in demo.blocks.values() if b.elem_id == "train-estimate")
        said = box.value if isinstance(box.value, str) else box.value()
        assert ("(rough)" in said) if not gpus else ("unknown" in said)


def test_the_recipe_buttons_fill_the_form_and_its_estimate_follows(store):
    """What the page does on a click of "Classic recipe", then "Quick CPU recipe": the button's handler fills
    the form's fields (its outputs, matched to the form by component), and the estimate line's handler,
    given the form's values, says what the run would cost. (In the page: one round trip per field changed,
    seconds on a loaded 2-core machine, so tests/test_browser.py's flow leaves these buttons to this test.)"""
    import re

    import gradio as gr

    from workbench.ui.context import AppContext
    from workbench.ui.tabs.train import create_train_tab

    with gr.Blocks() as demo:
        tab = create_train_tab(AppContext(store=store, queue=None, gpu_names=[]))
    by_id = {block.elem_id: block for block in demo.blocks.values() if block.elem_id}
    field_of = {component._id: name for name, component in tab.form.items()}
    (estimate_box,) = [
        fn
        for fn in demo.fns.values()
        if len(fn.targets) > 1 and [o._id for o in fn.outputs] == [by_id["train-estimate"]._id]
    ]
    assert [field_of[c._id] for c in estimate_box.inputs] == list(tab.form)  # every field, in the form's order

    def click(elem_id) -> tuple[dict, str]:
        # The button's server handler (beside it, a JS-only step with no fn says at once that the click was taken).
        (handler,) = [fn for fn in demo.fns.values() if (by_id[elem_id]._id, "click") in fn.targets and fn.fn]
        outputs = zip(handler.outputs, handler.fn())  # the form's fields, and the form's message line
        fields = {field_of[o._id]: value for o, value in outputs if o._id in field_of}
        assert set(fields) == set(tab.form)  # the whole form is refilled
        return fields, estimate_box.fn(*(fields[name] for name in tab.form))

    fields, said = click("recipe-classic")
    assert fields["epochs"] == 200 and re.search(r"200 epochs .*long for a CPU", said), said
    fields, said = click("recipe-quick")
    assert fields["epochs"] == 5 and "— 5 epochs of 14,976 images" in said, said
