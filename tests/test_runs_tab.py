"""The Runs tab: leaderboard data, analysis helpers, figures, store actions and handlers on a real Store."""

import csv
import dataclasses
import json

import numpy as np
import plotly.graph_objects as go
import pytest

from store import Store
from workbench.constants import CIFAR10_CLASSES, CIFAR100_CLASSES, PREPROCESSING
from workbench.data.classes import class_names
from workbench.errors import UserError
from workbench.specs.run import RunSpec
from workbench.ui import plots
from workbench.ui.forms import FORM_FIELDS, spec_to_form_values
from workbench.ui.tabs import runs as rt
from workbench.ui.tabs import runs_actions as ra
from workbench.views import runs as rd


class _Queue:
    def __init__(self, active=()):
        self._active = list(active)

    def active(self):
        return self._active


def _add(
    store,
    name,
    *,
    model="resnet20",
    loss="cross_entropy",
    augment=("flip_crop",),
    status="completed",
    vals=(0.5, 0.6, 0.7),
    test=0.65,
    params=270_000,
    seconds=120.0,
    tags=(),
    dataset="cifar10",
    logits=None,
):
    spec = RunSpec(model=model, loss=loss, augment=augment, epochs=len(vals) or 1, dataset=dataset, name=name).to_dict()
    run_id = store.create_run(name, spec, tags=tags, dataset=dataset)
    for epoch, val in enumerate(vals, 1):
        store.log_epoch(
            run_id,
            epoch,
            lr=0.1 / epoch,
            loss=2.0 / epoch,
            accuracy=val - 0.05,
            val_loss=2.2 / epoch,
            val_accuracy=val,
            seconds=10.0 * epoch,
        )
    store.update_run(run_id, params=params, test_accuracy=test, train_seconds=seconds)
    store.set_status(run_id, status)
    if logits is not None:
        store.save_logits(run_id, "test", *logits)
    return run_id


@pytest.fixture
def filled(store):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=60)
    logits = rng.normal(size=(60, 10)).astype(np.float32)
    ids = {
        "a": _add(store, "a", tags=("baseline",), logits=(logits, labels)),
        "b": _add(
            store, "b", loss="label_smoothing", vals=(0.5, 0.8), test=0.75, params=1_000_000, tags=("baseline", "ls")
        ),
        "c": _add(store, "c", loss="label_smoothing", vals=(0.4, 0.7), test=0.85, params=2_000_000),
        "d": _add(store, "d", model="vgg11_bn", status="failed", vals=(0.2,), test=None, params=None),
        "e": _add(store, "e", augment=(), status="completed", vals=(0.3,), test=0.3, params=50_000),
    }
    store.archive_run(ids["e"])
    store.save_ensemble("ens", "mean", [ids["a"], ids["b"]], [0.5, 0.5], val_accuracy=0.82, test_accuracy=0.8)
    return ids, logits, labels


def _table(store, **kw):
    filters = rd.LeaderboardFilters(**kw)
    return rd.leaderboard_rows(store.list_runs(include_archived=True), store.list_ensembles(), filters)


def _tabs(store):
    """The Runs tab built on `store`, beside the Train tab its "Clone" fills."""
    import gradio as gr

    from workbench.ui.context import AppContext
    from workbench.ui.tabs.train import create_train_tab

    ctx = AppContext(store=store, queue=_Queue())
    with gr.Blocks() as demo:
        with gr.Tabs() as tabs:
            with gr.Tab("Train", id="train"):
                train = create_train_tab(ctx)
            with gr.Tab("Runs", id="runs"):
                runs = rt.create_runs_tab(ctx)
        rt.wire_clone(ctx, runs, tabs, {"train": train})
    return demo, train, runs


def test_leaderboard_rows_filters_and_ensembles(store, filled):
    ids, *_ = filled
    rows = _table(store, sort_by="ID (oldest first)")
    assert [(r["Kind"], r["ID"]) for r in rows] == [("scratch", ids[k]) for k in "abcd"] + [("ensemble", 1)]
    a = rows[0]
    assert (a["Model"], a["Loss"], a["Augmentations"], a["Status"]) == (
        "resnet20",
        "cross_entropy",
        "flip_crop",
        "completed",
    )
    assert (a["Best val acc %"], a["Final val acc %"], a["Test acc %"], a["Params"], a["Train min"]) == (
        70.0,
        70.0,
        65.0,
        270_000,
        2.0,
    )
    assert a["Tags"] == "baseline" and rows[1]["Best val acc %"] == 80.0 and rows[1]["Final val acc %"] == 80.0
    ens = rows[-1]
    assert ens["Name"] == "ens" and ens["Test acc %"] == 80.0 and ens["Params"] == 1_270_000
    assert "mean of runs" in ens["Notes"]
    names = lambda **kw: [r["Name"] for r in _table(store, sort_by="Name", **kw)]  # noqa: E731
    assert names(status=["failed"]) == ["d"]
    assert names(model=["vgg11_bn"]) == ["d"]
    assert names(loss=["label_smoothing"]) == ["b", "c"]
    assert names(tag=["ls", "nothing"]) == ["b"]
    assert names(show_archived=True) == ["a", "b", "c", "d", "e", "ens"]
    assert names(show_ensembles=False) == ["a", "b", "c", "d"]
    assert rd.run_row(store.get_run(ids["e"]))["Status"] == "completed (archived)"
    assert rd.filter_options(store.list_runs(include_archived=True)) == {
        "status": ["completed", "failed"],
        "model": ["resnet20", "vgg11_bn"],
        "loss": ["cross_entropy", "label_smoothing"],
        "tag": ["baseline", "ls"],
        "by": [],  # runs made before owners were recorded
    }
    store.update_run(ids["b"], created_by="alice")
    store.update_run(ids["d"], created_by="bob")
    assert rd.filter_options(store.list_runs())["by"] == ["alice", "bob"]
    assert names(by=["alice"]) == ["b"] and names(by=["alice", "bob"]) == ["b", "d"]
    assert [r["By"] for r in _table(store, sort_by="Name", by=["bob"])] == ["bob"]
    assert rd.columns(nodes=True, owners=True)[6:9] == ("Status", "Node", "By") and "By" not in rd.COLUMNS


def test_sorting(store, filled):
    assert [r["Name"] for r in _table(store, sort_by="Test acc")] == ["c", "ens", "b", "a", "d"]
    assert [r["Name"] for r in _table(store, sort_by="Params (fewest first)")] == ["a", "b", "ens", "c", "d"]
    assert [r["Name"] for r in _table(store)][:4] == ["d", "c", "b", "a"]  # newest first
    with pytest.raises(UserError, match="unknown sort"):
        _table(store, sort_by="colour")


def test_the_page_shows_short_numbers_and_keeps_them_sortable(store, filled):
    assert [rd.format_count(n) for n in (20_559_958, 1_730_714, 62_006, 950, 123_456_789, None)] == [
        "20.6M",
        "1.73M",
        "62.0k",
        "950",
        "123M",
        "",
    ]
    styled = rd.display_table(_table(store, sort_by="ID (oldest first)"))
    html = styled.to_html()
    assert "270k" in html and "1.27M" in html and "270000" not in html and "nan" not in html.lower()
    assert list(styled.data["Params"][:2]) == [270_000, 1_000_000]  # the values the page sorts by
    assert list(styled.data.columns) == rd.shown_headers() and "Augment" in rd.shown_headers()


def test_per_class_accuracy_by_hand(store, filled):
    ids, logits, labels = filled
    got = rd.per_class_accuracy(store.load_logits(ids["a"], "test"), store.load_labels(ids["a"], "test"))
    pred = logits.argmax(1)
    for k in range(10):
        mask = labels == k
        expected = (pred[mask] == k).mean() if mask.any() else np.nan
        np.testing.assert_allclose(got[k], expected)
    small = rd.per_class_accuracy(np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]]), [0, 0, 1, 2], 4)
    np.testing.assert_allclose(small[:3], [0.5, 0.0, 1.0])
    assert np.isnan(small[3])
    cifar10 = store.get_run(ids["a"])
    assert class_names(store, cifar10, 10)[0] == "airplane" and class_names(store, cifar10, 3) == [
        "class 0",
        "class 1",
        "class 2",
    ]


def test_a_run_choice_is_its_label_and_its_id(store, filled):
    """Every run dropdown's choices are `rd.run_choice`s: the page shows "12: name", the value is 12."""
    ids, *_ = filled
    run = store.get_run(ids["b"])
    assert rd.run_choice(run) == (f"{ids['b']}: b", ids["b"]) and rd.run_label(run) == f"{ids['b']}: b"
    assert rd.run_choice(run, " (completed)") == (f"{ids['b']}: b (completed)", ids["b"])
    assert rd.chosen_run_id(np.int64(ids["b"])) == ids["b"] and rd.chosen_run_ids(None) == []
    assert rd.chosen_run_ids([ids["a"], ids["b"]]) == [ids["a"], ids["b"]] == rd.chosen_run_ids(ids["a"]) + [ids["b"]]
    for nothing in (None, "", " "):
        with pytest.raises(UserError, match="pick a run first"):
            rd.chosen_run_id(nothing)
    with pytest.raises(UserError, match="is not a run"):
        rd.chosen_run_id(f"{ids['b']}: b")  # a label is not read back


def test_class_names_one_answer_for_every_tab(store):
    """`class_names(store, run)`, which the Runs, Errors and Predict tabs share: the names stored with the
    run, else those the caller loaded, else the official CIFAR names, else "class i"; a count other than
    the logits' passes a source over."""
    folder = store.get_run(_add(store, "folder", dataset="folder", vals=()))
    assert class_names(store, folder, 3) == ["class 0", "class 1", "class 2"]
    assert class_names(store, folder, 2, found=["cats", "dogs"]) == ["cats", "dogs"]
    (store.run_dir(folder["id"]) / PREPROCESSING).write_text(json.dumps({"class_names": ["ants", "bees"]}))
    assert class_names(store, folder, 2, found=["cats", "dogs"]) == class_names(store, folder) == ["ants", "bees"]
    assert class_names(store, folder, 3, found=["a", "b", "c"]) == ["a", "b", "c"]  # stored: another count
    cifar100 = store.get_run(_add(store, "c100", dataset="cifar100", vals=()))
    assert class_names(store, cifar100, 100) == list(CIFAR100_CLASSES) and CIFAR100_CLASSES[99] == "worm"
    cifar10 = store.get_run(_add(store, "c10", vals=()))
    assert class_names(store, cifar10, 10) == list(CIFAR10_CLASSES) == class_names(store, cifar10)
    (store.run_dir(cifar10["id"]) / PREPROCESSING).write_text("{damaged")
    assert class_names(store, cifar10, 10) == list(CIFAR10_CLASSES)


def test_grouping_and_smoothing(store, filled):
    runs = rd.filter_runs(store.list_runs(include_archived=True), status=["completed"], show_archived=True)
    groups = {g["group"]: g for g in rd.group_accuracy(runs, "Loss", "Test accuracy")}
    ls = groups["label_smoothing"]
    assert ls["n"] == 2 and ls["mean"] == pytest.approx(80.0) and ls["std"] == pytest.approx(np.std([75, 85], ddof=1))
    assert groups["cross_entropy"]["n"] == 2 and groups["cross_entropy"]["mean"] == pytest.approx(47.5)
    aug = {g["group"]: g for g in rd.group_accuracy(runs, "Augmentation", "Best validation accuracy")}
    assert aug["none"] == {
        "group": "none",
        "n": 1,
        "mean": pytest.approx(30.0),
        "std": 0.0,
        "runs": [filled[0]["e"]],
        "pools": "1 setting: models resnet20; losses cross_entropy",
    }
    assert groups["label_smoothing"]["pools"] == "1 setting: models resnet20; augmentations flip_crop"
    assert rd.ema([1.0, None, 3.0], 0.5) == [1.0, None, 2.0]
    assert rd.ema([1.0, 2.0], 0) == [1.0, 2.0]
    xs, ys = rd.curve_series(store.epochs(filled[0]["a"]), "Validation accuracy", "Wall time")
    assert xs == pytest.approx([10 / 60, 30 / 60, 60 / 60]) and ys == pytest.approx([50.0, 60.0, 70.0])


def test_figures(store, filled):
    ids, *_ = filled
    a, b = store.get_run(ids["a"]), store.get_run(ids["b"])
    fig = plots.curves([(a, store.epochs(ids["a"])), (b, store.epochs(ids["b"]))], "Validation loss", "Epoch", 0)
    assert [t.name for t in fig.data] == [f"{ids['a']}: a", f"{ids['b']}: b"]
    assert fig.layout.xaxis.title.text == "epoch" and fig.layout.height == 360 and fig.layout.title.text
    smooth = ra.curves_figure(store, [ids["a"]], "Validation accuracy", "Wall time", 0.6)
    assert len(smooth.data) == 2 and smooth.data[1].y[1] == pytest.approx(0.6 * 50 + 0.4 * 60)
    assert "wall time" in smooth.layout.xaxis.title.text
    pc = ra.per_class_figure(store, [ids["a"], ids["b"]])
    assert len(pc.data) == 1 and list(pc.data[0].x)[:2] == ["airplane", "automobile"]
    assert "no test predictions" in pc.layout.annotations[0].text
    scatter, groups = ra.overview_figures(store, "Test accuracy", "Loss")
    assert sorted(t.name for t in scatter.data) == ["resnet20"] and scatter.layout.xaxis.type == "log"
    assert len(scatter.data[0].x) == 3  # completed, unarchived, with params and test accuracy
    assert list(groups.data[0].y) == ["label_smoothing (n=2)", "cross_entropy (n=1)"]  # counts clear of the bars
    # Built unvalidated for the poll's speed: validated here, so an unknown property still fails.
    live = go.Figure(plots.live_curves(a, store.epochs(ids["a"])).to_dict())
    assert [t.name for t in live.data] == ["training", "validation", "train acc", "val acc", "learning rate"]
    assert [t.xaxis for t in live.data] == ["x", "x", "x2", "x2", "x3"]
    assert live.layout.height == 360 and live.layout.xaxis3.title.text == "epoch"
    assert live.layout.xaxis.dtick == 1 and live.layout.xaxis.tickformat == "d"  # epochs: whole numbers
    assert live.layout.xaxis.range[1] == max(e["epoch"] for e in store.epochs(ids["a"])) + 0.5  # last marker whole
    assert [n.text for n in live.layout.annotations] == ["Loss", "Accuracy (%)", "Learning rate"]
    phased = go.Figure(
        plots.live_curves(
            {**a, "kind": "finetune", "spec": {"head_epochs": 1, "finetune_epochs": 2}}, store.epochs(ids["a"])
        ).to_dict()
    )
    assert [shape.xref for shape in phased.layout.shapes] == ["x", "x2", "x3"]
    assert phased.layout.annotations[-1].text == "phase 2: backbone unfrozen"
    assert plots.whole_steps(200)["dtick"] == 25 and plots.whole_steps(8)["dtick"] == 1
    waiting = plots.live_curves(a, [])  # a message alone, not on top of three empty plots' axis titles
    assert [n.text for n in waiting.layout.annotations] == ["waiting for the first epoch..."]
    assert plots.curves([]).layout.annotations[0].text.startswith("Select runs")


def test_refresh_and_empty_state(store, filled, tmp_path):
    ids, *_ = filled
    _, _, tab = _tabs(store)
    v = tab.view
    out = tab.refresh.fn([], [], [], [], False, True, rd.DEFAULT_SORT, [], [ids["a"], 999], None)
    table, summary = out[v.leaderboard]["value"].data, out[v.summary]  # a pandas Styler: numbers shown short
    assert len(table) == 5 and "4 of 5 run(s) shown, 1 archived hidden" in summary
    assert out[v.selection]["value"] == [ids["a"]] and (f"{ids['d']}: d", ids["d"]) in out[v.selection]["choices"]
    with Store(tmp_path / "empty.db") as empty:
        _, _, tab = _tabs(empty)
        out = tab.refresh.fn()
        assert out[tab.view.leaderboard]["value"].data.empty and rd.EMPTY_MESSAGE in out[tab.view.summary]


def test_export_csv(store, filled):
    path = ra.export_csv(store, rd.LeaderboardFilters(["completed"], [], [], [], False, True, "Name"))
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(rd.COLUMNS) and [r[2] for r in rows[1:]] == ["a", "b", "c"]
    assert rows[1][9] == "65.0" and rows[1][13] == "baseline"  # after the reviewed test accuracy (blank here)
    with pytest.raises(UserError, match="empty"):
        ra.export_csv(store, rd.LeaderboardFilters(status=["queued"]))
    # Gradio's values as the handlers get them: None or lists, read as tuples, flags and the default sort
    assert rd.LeaderboardFilters(*[None] * 8) == rd.LeaderboardFilters(show_ensembles=False)
    assert rd.LeaderboardFilters(["completed"], sort_by="").status == ("completed",)
    assert rd.LeaderboardFilters(sort_by="").sort_by == rd.DEFAULT_SORT


def test_notes_tags_archive_delete_clone(store, filled):
    ids, *_ = filled
    choice = ids["b"]  # the pick's value: its choices are (label, run id)
    assert "run" in ra.save_notes_tags(store, choice, " lr too high ", "x, y ,x,, z")
    run = store.get_run(ids["b"])
    assert run["notes"] == "lr too high" and run["tags"] == ["x", "y", "z"]
    assert ra.run_details(store, choice)[:3] == ("lr too high", "x, y, z", "Archive")
    ra.toggle_archive(store, choice)
    assert store.get_run(ids["b"])["archived"] and ra.run_details(store, choice)[2] == "Unarchive"
    ra.toggle_archive(store, choice)
    assert not store.get_run(ids["b"])["archived"]

    clone = ra.clone_values(store, choice)
    spec = RunSpec.from_dict(run["spec"]).replace(name="b-2")  # a name no run has; the settings as they were
    assert clone.tab == "train" and list(clone.fields) == FORM_FIELDS
    assert list(clone.fields.values()) == spec_to_form_values(spec) and clone.tags == "x, y, z"
    assert clone.command == spec.to_cli() and "--loss label_smoothing" in clone.command

    with pytest.raises(UserError, match="I am sure"):
        ra.delete_run(store, _Queue(), choice, False)
    with pytest.raises(UserError, match="cancel it"):
        ra.delete_run(store, _Queue([ids["b"]]), choice, True)
    folder = store.run_dir(ids["b"])
    ra.delete_run(store, _Queue(), choice, True)
    assert ids["b"] not in [r["id"] for r in store.list_runs(include_archived=True)]
    assert not folder.exists()
    with pytest.raises(UserError, match="pick a run"):
        ra.clone_values(store, None)


def test_guard_turns_errors_into_messages():
    import gradio as gr

    status = gr.Markdown()
    wrapped = rt._guarded(status=status)(lambda: (_ for _ in ()).throw(UserError("bad input")))
    with pytest.warns(UserWarning):
        assert wrapped() == {status: "⚠️ bad input"}
    quiet = rt._guarded()(lambda: 1 / 0)
    with pytest.warns(UserWarning):
        assert quiet() == gr.skip()
    fig = rt._guarded(figure_title="Curves")(lambda: 1 / 0)
    with pytest.warns(UserWarning):
        assert "ZeroDivisionError" in fig().layout.annotations[0].text


def test_tab_builds_and_clones_into_the_train_form(store, filled):
    ids, *_ = filled
    demo, train, tab = _tabs(store)
    assert len(tab.refresh.inputs) == 10 and len(tab.refresh.outputs) == 9
    # the filter components in the order of LeaderboardFilters' fields, which handlers build from their values
    v = tab.view
    by_field = [
        getattr(v, f"{f.name}_filter", None) or getattr(v, f.name) for f in dataclasses.fields(rd.LeaderboardFilters)
    ]
    assert by_field == v.filters == tab.refresh.inputs[:8]
    assert len(tab.refresh.fn()[tab.view.leaderboard]["value"].data) == 5
    assert tab.overview.outputs == [tab.view.scatter, tab.view.groups]
    clone = next(block.fn for block in demo.fns.values() if block.api_name == "runs_clone")
    out = clone(ids["b"])
    assert out[train.form["loss"]] == "label_smoothing" and out[train.form["name"]] == "b-2"
    assert out[train.tags] == "baseline, ls" and "--name b-2" in out[train.command]
    assert "--loss label_smoothing" in out[train.command] and out[train.timer].active and not out[tab.timer].active
    assert out[tab.view.action_status].startswith(f"Cloned run {ids['b']} into the Train form as **b-2** with its tags")
    with pytest.warns(UserWarning):
        assert clone(None) == {tab.view.action_status: "⚠️ pick a run first"}


def test_a_fine_tune_run_clones_into_the_fine_tune_form(store):
    from workbench.specs.finetune import FinetuneSpec
    from workbench.ui.tabs import finetune as ft

    spec = FinetuneSpec(
        backbone="mobilenet_v2",
        weights="none",
        image_size=64,
        head_epochs=2,
        finetune_epochs=3,
        dataset="synthetic",
        dataset_options={"n_train": 300, "n_test": 60},
        augment=("flip_crop",),
        name="ft-clone",
    )
    run_id = store.create_run("ft-clone", spec.to_dict(), kind="finetune", tags=["ft"])
    clone = ra.clone_values(store, run_id)
    assert clone.tab == "finetune" and list(clone.fields) == ft.form_names() and clone.tags == "ft"
    assert "--backbone mobilenet_v2 --weights none" in clone.command and "--name ft-clone-2" in clone.command
    fields = clone.fields  # the form gives the same spec back, under the new name
    assert ft.values_to_spec(list(fields), list(fields.values())) == spec.replace(name="ft-clone-2")
    store.update_run(run_id, spec={"backbone": "vgg19", "no_such_field": 1})
    with pytest.raises(UserError, match="stored settings cannot be read"):
        ra.clone_values(store, run_id)


def test_accuracy_by_setting_spreads_over_seeds(store):
    def add(seed, lr, test):
        spec = RunSpec(model="resnet20", learning_rate=lr, seed=seed, epochs=2, name=f"s{seed}-{lr}").to_dict()
        run_id = store.create_run(spec["name"], spec)
        store.update_run(run_id, test_accuracy=test)
        return run_id

    same = [add(0, 0.1, 0.70), add(1, 0.1, 0.74)]
    other = add(0, 0.05, 0.60)
    groups = rd.group_accuracy(store.list_runs(), "Setting")
    assert [g["runs"] for g in groups] == [same, [other]]
    assert groups[0]["mean"] == pytest.approx(72.0) and groups[0]["std"] == pytest.approx(np.std([70, 74], ddof=1))
    assert groups[0]["pools"] == "seeds 0, 1"
    # Two settings alike in model, loss and augmentation are told apart by what differs.
    assert groups[0]["group"] == "resnet20 · cross_entropy · flip_crop · learning_rate=0.1"
    assert groups[1]["group"].endswith("learning_rate=0.05")
    figure = plots.grouped_accuracy(groups, "Setting")
    assert "over seeds" in figure.layout.title.subtitle.text
    assert list(figure.data[0].customdata) == ["seeds 0, 1", "seeds 0"]
    assert "pools every setting with that loss" in plots.grouped_accuracy(groups, "Loss").layout.title.subtitle.text


def test_the_group_figure_is_readable_however_many_groups():
    """Issue 23: rotated names under upright bars left ~70 px of plot, the y title ran into the chart title and
    names were cut at 1024 px. Now horizontal bars, names wrapped at " · " on the y axis with automargin, the
    figure taller for every group and name line, the spread in a subtitle and no y title to collide."""

    def groups(n):
        return [
            dict(
                group=f"wide_resnet{i} · label_smoothing · flip_crop+cutout · learning_rate=0.0{i}",
                n=2,
                mean=90.0 - i,
                std=0.5,
                pools="seeds 0, 1",
            )
            for i in range(n)
        ]

    few, many = plots.grouped_accuracy(groups(2), "Setting"), plots.grouped_accuracy(groups(12), "Setting")
    for figure in (few, many):
        assert figure.data[0].orientation == "h" and figure.layout.yaxis.automargin is True
        assert figure.layout.yaxis.autorange == "reversed"  # best (first) on top
        assert not figure.layout.yaxis.title.text and figure.layout.title.text == "Test accuracy by setting"
        assert all(len(line) <= 30 for label in figure.data[0].y for line in label.split("<br>"))
    assert few.layout.height >= plots.HEIGHT and many.layout.height > few.layout.height + 10 * plots.GROUP_LINE_PX
    assert many.data[0].y[0] == "wide_resnet0 ·<br>label_smoothing ·<br>flip_crop+cutout ·<br>learning_rate=0.00 (n=2)"
    assert plots.group_label("cross_entropy", 3) == "cross_entropy (n=3)"
    validated = go.Figure(many.to_dict())  # every property a real one
    assert validated.layout.height == many.layout.height


def test_a_clone_gets_a_name_no_run_has():
    assert rd.fresh_name("b", {"b"}) == "b-2"
    assert rd.fresh_name("b", {"b", "b-2", "b-3"}) == "b-4"
    assert rd.fresh_name("b-2", {"b", "b-2"}) == "b-3"  # a clone of a clone counts on
    assert rd.fresh_name("lr-5", {"lr-5"}) == "lr-5-2"  # "-5" is part of this name: no run "lr"


def test_training_minutes_of_a_running_run_are_live(store):
    from datetime import datetime

    import gradio as gr

    demo, _, tab = _tabs(store)
    tick = next(block.fn for block in demo.fns.values() if getattr(block.fn, "__name__", "") == "live_fn")
    values = ([], [], [], [], False, True, rd.DEFAULT_SORT, [], None)  # the refresh's inputs on a fresh page
    assert tick(*values) == gr.skip()  # nothing running: nothing redrawn
    run_id = store.create_run("busy", RunSpec(epochs=3).to_dict())
    store.set_status(run_id, "running")
    store.log_epoch(run_id, 1, seconds=60.0)
    logged = datetime.fromisoformat(store.epochs(run_id)[-1]["logged_at"]).timestamp()
    minutes = lambda now: rd.run_row(ra.with_live_time(store, store.list_runs(), now)[0])["Train min"]  # noqa: E731
    assert minutes(logged + 30) == 1.5 and minutes(logged + 90) == 2.5  # the epoch's minute, then the clock's
    from store.lock import StoreLock

    runner = StoreLock(store.path).acquire()  # a live runner: without one, readers show the run interrupted
    try:
        table = tick(*values)[tab.view.leaderboard]["value"].data  # a pandas Styler: its data is the frame shown
    finally:
        runner.release()
    row = table.iloc[0].to_dict()
    assert row["Name"] == "busy" and row["Train min"] >= 1.0


def test_a_distillation_run_clones_with_its_teacher_into_the_distil_box(store, filled):
    from workbench.specs import DistillSpec

    ids, *_ = filled
    demo, train, tab = _tabs(store)
    box = train.distill
    teacher = store.create_run("teacher", RunSpec(model="lenet", epochs=2).to_dict())
    path = store.run_dir(teacher) / "model.keras"
    path.write_bytes(b"not read here")
    store.update_run(teacher, checkpoint_path=str(path))
    store.set_status(teacher, "completed")
    spec = DistillSpec(model="lenet", epochs=2, teacher=f"run:{teacher}", temperature=2.0, alpha=0.5, name="taught")
    taught = store.create_run("taught", {**spec.to_dict(), "teacher_members": {str(teacher): 1.0}}, kind="distill")
    store.set_status(taught, "completed")
    clone = next(block.fn for block in demo.fns.values() if block.api_name == "runs_clone")
    out = clone(taught)
    assert out[train.form["name"]] == "taught-2" and out[train.form["model"]] == "lenet"
    assert out[box.accordion].open and out[box.teacher]["value"] == f"run:{teacher}"
    assert (out[box.temperature], out[box.alpha], out[box.mode]) == (2.0, 0.5, "online")
    assert "press **Distil**" in out[box.message] and "press **Distil**" in out[tab.view.action_status]
    assert "python -m workbench distill" in out[box.command] and f"--teacher run:{teacher}" in out[box.command]
    assert "python -m workbench train" in out[train.command]  # the Train button's run: the same without a teacher
    plain = clone(ids["b"])  # any other run closes the box
    assert not plain[box.accordion].open and plain[box.teacher]["value"] is None
