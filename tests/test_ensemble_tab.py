"""The Ensemble tab: its handlers on a real store, and in a real browser against a real server whose store
holds three finished runs on one split and one on another."""

import re

import numpy as np
import pytest
from conftest import ARTIFACTS, AppServer, completed_run
from conftest import wait_until as _wait

from store import Store
from workbench.ensemble import lab
from workbench.ui.tabs.ensemble_tables import TOP_WAITING, metrics_table, top_table

pytestmark = pytest.mark.browser


def _fill_store(db, skills=(2.0, 1.5, 0.4)):
    """Runs 1-3 on split "seed0-test", run 4 ("other-split") on another, and a queued run."""
    rng = np.random.default_rng(1)
    y_val, y_test = rng.integers(0, 10, 500), rng.integers(0, 10, 1000)
    with Store(db) as store:
        for i, skill in enumerate((*skills, 1.0)):
            ours = i < len(skills)
            completed_run(
                store,
                f"member-{i}" if ours else "other-split",
                {"model": "resnet20", "loss": "cross_entropy", "epochs": 3},
                split_id="seed0-test" if ours else "seed1-other",
                test_accuracy=0.5,
                rng=rng,
                skill=skill,
                flips=True,
                logits={"val": y_val, "test": y_test},
            )
        store.create_run("still-queued", {"epochs": 3})


def test_metrics_table_shows_what_the_settings_define():
    scored = {
        "val": {"accuracy": 0.9, "nll": 0.3, "ece": 0.02},
        "test": {"accuracy": 0.8, "nll": None, "ece": 0.03},
        "weights": [1.0],
        "members": [
            {
                "id": 4,
                "name": "a",
                "temperature": 1.2,
                "val_accuracy": 0.7,
                "val_nll": 0.9,
                "val_ece": 0.1,
                "test_accuracy": 0.6,
                "test_nll": 1.0,
                "test_ece": 0.2,
            }
        ],
    }
    plain = metrics_table(scored, lab.Settings())
    assert "T" not in plain.columns and plain.iloc[0]["val acc %"] == 90.0 and plain.iloc[1]["test acc %"] == 60.0
    scaled = metrics_table(scored, lab.Settings(temperature=True))
    assert list(scaled.columns[:3]) == ["source", "weight", "T"] and scaled.iloc[1]["T"] == 1.2
    assert plain.iloc[0]["test NLL"] == "n/a" and plain.iloc[1]["test NLL"] == 1.0  # a vote has no NLL


def _handlers(db):
    """The tab built on the store at `db`: its events' handlers by api name, and its components."""
    import gradio as gr

    from workbench.ui.context import AppContext
    from workbench.ui.tabs.ensemble import create_ensemble_tab

    store = Store(db)
    with gr.Blocks() as demo:
        tab = create_ensemble_tab(AppContext(store=store, queue=None))
    return {block.api_name: block.fn for block in demo.fns.values() if block.api_name}, tab.view, store


def test_settings_keep_the_weights_and_a_search_replaces_the_last(tmp_path):
    _fill_store(tmp_path / "w.db")
    fns, v, store = _handlers(tmp_path / "w.db")
    mean, vote = ("mean", "prob", False, False, False), ("vote", "prob", False, False, False)
    picked = fns["ensemble_select"]([1], *mean)  # one run picked: the other split's run is out before it is picked
    assert [value for _, value in picked[v.runs]["choices"]] == [1, 2, 3]
    assert "run 4 other-split: trained on split seed1-other" in picked[v.unavailable]
    grid = fns["ensemble_grid"]([1, 2, 3], *mean)
    weights = [grid[s]["value"] for s in v.sliders[:3]]
    assert max(weights) == 1.0 and list(grid[v.top].columns) == ["w1", "w2", "w3", "val acc %"]
    assert grid[v.top].iloc[0, :3].max() == 1.0  # the table's weights on the sliders' scale
    voted = fns["ensemble_settings"]([1, 2, 3], *vote, *weights, *[1.0] * 5)
    assert not set(v.sliders) & set(voted)  # the weights stay
    table = voted[v.metrics]
    assert list(table["weight"][1:]) == [round(w, 3) for w in weights] and "T" not in table.columns
    assert table.iloc[0]["val NLL"] == "n/a" and "Majority vote" in voted[v.message]
    assert voted[v.search_plot] is None and voted[v.top].empty  # a search for other settings is gone
    optimised = fns["ensemble_optimize"]([1, 2, 3], *mean)
    assert optimised[v.search_plot] is None and optimised[v.top].empty
    assert max(optimised[s]["value"] for s in v.sliders[:3]) == 1.0
    store.close()


def test_mix_search_and_save_in_the_browser(tmp_path, browser):
    (tmp_path / "runs").mkdir()
    _fill_store(tmp_path / "runs" / "workbench.db")
    server = AppServer(tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        page.goto(server.url)
        page.get_by_role("tab", name="Ensemble").click()
        _wait(
            lambda: "still-queued" in page.locator("#ensemble-unavailable").inner_text(),
            page=page,
            what="the unavailable list",
        )
        assert "only completed runs" in page.locator("#ensemble-unavailable").inner_text()
        box = page.locator("#ensemble-runs input")
        box.click()  # two splits in the store: each choice names its split before anything is picked
        page.get_by_role("option", name="4: other-split (split seed1-other)", exact=True).wait_for()
        for name in ("1: member-0", "2: member-1", "3: member-2"):
            box.click()
            box.fill(name)
            page.get_by_role("option", name=f"{name} (split seed0-test)", exact=True).click()
            page.wait_for_timeout(300)
            if name == "1: member-0":  # the first pick rules the other split's run out before it is picked
                _wait(
                    lambda: (
                        "other-split: trained on split seed1-other"
                        in page.locator("#ensemble-unavailable").inner_text()
                    ),
                    page=page,
                    what="the other split ruled out",
                )
                box.fill("other")
                assert page.get_by_role("option", name=re.compile("other-split")).count() == 0
        metrics = page.locator("#ensemble-metrics")
        _wait(
            lambda: "ensemble" in metrics.inner_text() and "3: member-2" in metrics.inner_text(),
            page=page,
            what="the metrics of three members",
        )
        assert page.locator("#ensemble-weight-2").is_visible() and not page.locator("#ensemble-weight-3").is_visible()
        page.get_by_role("button", name="Grid search (step 0.1)").click()
        message = _wait(
            lambda: re.search(
                r"Grid search over ([\d,]+) combinations: best validation accuracy ([\d.]+)%",
                page.locator("#ensemble-message").inner_text(),
            ),
            page=page,
            what="the grid search message",
        )
        assert message.group(1) == "1,330"  # 11^3 - 1
        page.wait_for_timeout(1500)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "05-ensemble-tab.png"), full_page=True)
        weights = [page.locator(f"#ensemble-weight-{i} input[type=number]").input_value() for i in range(3)]
        assert max(map(float, weights)) == 1.0
        page.get_by_label("majority vote").check()  # a vote keeps the weights and shows no NLL
        _wait(lambda: "Majority vote" in page.locator("#ensemble-message").inner_text(), page=page, what="the vote")
        assert [page.locator(f"#ensemble-weight-{i} input[type=number]").input_value() for i in range(3)] == weights
        assert "n/a" in metrics.inner_text()
        page.get_by_label("weighted mean").check()
        _wait(lambda: "n/a" not in metrics.inner_text(), page=page, what="the mean's NLL back")
        page.get_by_label("Ensemble name").fill("trio")
        page.get_by_role("button", name="Save ensemble").click()
        _wait(
            lambda: "Saved ensemble 1: trio" in page.locator("#ensemble-message").inner_text(),
            page=page,
            what="the saved message",
        )
        with Store(server.db) as store:
            saved = store.get_ensemble(1)
        assert saved["members"] == [1, 2, 3] and saved["val_accuracy"] == pytest.approx(
            float(message.group(2)) / 100, abs=6e-5
        )
        assert saved["weights"][2] <= min(saved["weights"][:2])
        page.close()
    finally:
        server.stop()


def test_a_loaded_ensemble_shows_its_saved_weights_in_the_top_table(tmp_path):
    """The table showed bare headers "1 2 3" after a load (an empty frame without columns): now the saved
    weights, one column per member, and the validation accuracy they were saved with."""
    _fill_store(tmp_path / "w.db")
    fns, v, store = _handlers(tmp_path / "w.db")
    mean = ("mean", "prob", False, False, False)
    saved = fns["ensemble_save"]("pair", [1, 3], *mean, 1.0, 0.5, *[1.0] * 6)[1]["value"]
    loaded = fns["ensemble_load"](saved)
    top = loaded[v.top]
    assert list(top.columns) == ["w1", "w3", "val acc %"]
    assert top.iloc[0, :2].tolist() == [1.0, 0.5]
    assert top.iloc[0, 2] == round(100 * store.get_ensemble(saved)["val_accuracy"], 2)
    assert loaded[v.search_plot] is None and "Loaded ensemble" in loaded[v.message]
    # Before a search: the members' headers, or with none one that says what fills the table; never 1 2 3.
    assert list(fns["ensemble_select"]([1, 2], *mean)[v.top].columns) == ["w1", "w2", "val acc %"]
    assert list(top_table().columns) == [TOP_WAITING, "val acc %"] and top_table().empty
    store.close()
