"""Time estimates before queueing (no training here): the shipped per-family constants, refined by the
store's finished runs of the same family and batch size and by nothing else, saying what they rest on;
linear in epochs and images, the final evaluation by its views; advice that names only the tab's own
buttons; and the Train form's recipes that fit the device (on a CPU: one that finishes in minutes)."""

import pytest

from models import create_model, list_models
from workbench.jobs.costs import BACKBONE_MMACS, MODEL_FAMILY, MODEL_MMACS, count_mmacs
from workbench.jobs.estimate import estimate, speeds
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


def test_the_family_table_agrees_with_the_registry_and_every_family_has_constants():
    from models import model_info

    assert {name: model_info(name)["family"] for name in list_models()} == MODEL_FAMILY
    figures = speeds()
    assert {"machine", "measured", "load", "start", "pipeline"} <= set(figures)
    assert set(MODEL_FAMILY.values()) <= set(figures["cpu"])


def test_without_history_an_estimate_from_the_shipped_constants(store):
    quick = estimate(QUICK, store, gpu_count=0)
    assert quick.rough and quick.source.startswith("From the resnet constants timed with resnet20 on ")
    assert "no resnet run at batch size 128 has finished here yet" in quick.source
    assert quick.images == 14976 and quick.epochs == 5  # 15,000-image subset, whole batches of 128
    assert 2 * 60 < quick.seconds < 30 * 60
    text = estimate_text(quick, hint="advice")
    assert text.startswith("**Time on this CPU: ~") and "(rough)** — ~" in text and "5 epochs of 14,976 images" in text
    assert "long for a CPU" not in text
    classic = estimate(CLASSIC, store, gpu_count=0)
    assert classic.seconds > 5 * 3600 and "That is long for a CPU: advice" in estimate_text(classic, hint="advice")
    assert "long for a CPU" not in estimate_text(classic)  # no advice given: none said
    on_gpu = estimate(QUICK, store, gpu_count=1)
    assert on_gpu.seconds is None and "no figure for a GPU yet" in estimate_text(on_gpu)
    folder = estimate(QUICK.replace(dataset="folder", data_path="/data/pets"), store, gpu_count=0)
    assert folder.seconds is None and "folder dataset's size" in estimate_text(folder)
    finetune = estimate(FinetuneSpec(), store, gpu_count=0)
    assert finetune.rough and finetune.seconds > quick.seconds and "inception_v3 fine-tune constants" in finetune.source


def test_the_estimate_grows_linearly_with_epochs_and_images(store):
    spec = QUICK.replace(val_size=1000)
    one, two, four = (estimate(spec.replace(epochs=n), store, 0) for n in (1, 2, 4))
    assert four.seconds - two.seconds == pytest.approx(2 * (two.seconds - one.seconds))
    assert one.start == two.start and one.evaluation == two.evaluation  # paid once, whatever the epochs
    small, large, larger = (estimate(spec.replace(train_subset=n), store, 0) for n in (2560, 5120, 7680))
    training = lambda e: e.seconds - e.start - e.evaluation  # noqa: E731 - the epochs alone
    assert (small.images, large.images, larger.images) == (2560, 5120, 7680)
    assert training(larger) - training(large) == pytest.approx(training(large) - training(small))
    assert training(large) - training(small) > 0.5 * training(small)  # the images, beside each epoch's validation
    # Whole CIFAR-10 and larger models cost more; a fine-tune's size costs by its pixels.
    assert estimate(spec.replace(model="resnet56"), store, 0).seconds > 2 * one.seconds
    big = estimate(FinetuneSpec(image_size=192), store, 0)
    assert big.seconds > 3 * estimate(FinetuneSpec(), store, 0).seconds


def test_more_views_cost_more_evaluation(store):
    plain = estimate(QUICK.replace(augment=("flip_crop",)), store, 0)
    translated = estimate(QUICK.replace(augment=("translate", "alt_flip")), store, 0)
    assert translated.evaluation == pytest.approx(3 * plain.evaluation)  # 6 passes over each split, not 2
    assert translated.seconds > plain.seconds


def test_history_of_the_same_family_and_batch_size_moves_the_figure_and_nothing_else_does(store):
    before = estimate(QUICK, store, gpu_count=0)
    # Unrelated runs: another family, another batch size, another device; none moves the figure.
    _finished(store, QUICK.replace(model="lenet"), [1.0, 1.0, 1.0], eval_seconds=1.0)
    _finished(store, QUICK.replace(batch_size=64), [10.0, 10.0])
    _finished(store, QUICK, [5.0, 5.0], device="GPU:0")  # the same family and batch size on a GPU
    unmoved = estimate(QUICK, store, gpu_count=0)
    assert unmoved.seconds == pytest.approx(before.seconds) and unmoved.rough
    # A finished resnet run at batch 128 here (resnet56: the same family) scales it.
    said = estimate(QUICK.replace(model="resnet56"), store, 0)
    epoch = (said.seconds - said.start - said.evaluation) / said.epochs
    _finished(
        store, QUICK.replace(model="resnet56"), [3 * epoch, 2 * epoch, 2 * epoch], eval_seconds=said.evaluation / 2
    )
    learned = estimate(QUICK, store, gpu_count=0)
    assert not learned.rough and learned.source.startswith("From 1 earlier resnet run at batch size 128 on this CPU")
    before_epochs = before.seconds - before.start - before.evaluation
    assert learned.seconds - learned.start - learned.evaluation == pytest.approx(2 * before_epochs)
    assert learned.evaluation == pytest.approx(before.evaluation / 2)
    assert learned.start == pytest.approx(2 * before.start)  # the same machine: its start by the same ratio
    # The run itself again: its own measured epochs and evaluation.
    again = estimate(QUICK.replace(model="resnet56", name="again"), store, 0)
    assert again.evaluation == pytest.approx(said.evaluation / 2)
    # On a GPU: no shipped figure; the GPU run of the family and batch size gives one, another batch size none.
    on_gpu = estimate(QUICK, store, gpu_count=1)
    assert not on_gpu.rough and on_gpu.source.startswith("From 1 earlier resnet run at batch size 128 on 1 GPU")
    assert estimate(QUICK.replace(batch_size=256), store, gpu_count=1).seconds is None


def test_advice_names_only_the_tabs_own_buttons_and_never_the_chosen_recipe():
    from workbench.ui.tabs.finetune import FINETUNE_HINT
    from workbench.ui.tabs.train import train_hint

    assert "Quick CPU recipe" in train_hint(CLASSIC, QUICK)
    assert "Quick CPU recipe" not in train_hint(QUICK.replace(name="mine", gpus=0), QUICK)
    assert "recipe" not in FINETUNE_HINT.lower() and "button" not in FINETUNE_HINT.lower()
    long_finetune = estimate(FinetuneSpec(finetune_epochs=200), None, 0)
    text = estimate_text(long_finetune, hint=FINETUNE_HINT)
    assert "long for a CPU" in text and "recipe" not in text.lower()


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
    assert fields["epochs"] == 5 and "to start, 5 epochs of 14,976 images" in said, said
