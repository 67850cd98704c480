"""Ensembles of stored runs: eligibility, loading checks, scoring, weight search on validation only,
saving and reloading, and the `ensemble` CLI command. Runs and logits are written through the real
Store (no training needed: ensembles only ever read stored logits)."""

import numpy as np
import pytest
from conftest import completed_run, logits_for
from scipy import stats

from store import Store
from workbench.cli.main import main
from workbench.ensemble import lab
from workbench.errors import UserError

N_VAL, N_TEST, K = 400, 600, 10


@pytest.fixture
def filled(tmp_path):
    """Three completed runs of different skill on one split, one on another split, one still running."""
    rng = np.random.default_rng(0)
    y_val, y_test = rng.integers(0, K, N_VAL), rng.integers(0, K, N_TEST)
    store = Store(tmp_path / "w.db")
    ids = [
        completed_run(
            store,
            f"member-{i}",
            {"model": "resnet20"},
            split_id="seed0-abc",
            rng=rng,
            skill=skill,
            flips=True,
            logits={"val": y_val, "test": y_test},
        )
        for i, skill in enumerate((2.0, 1.5, 0.3))
    ]
    other = store.create_run("other-split", {})
    store.update_run(other, split_id="seed1-def")
    store.save_logits(other, "val", logits_for(y_val, rng, 2), y_val)
    store.save_logits(other, "test", logits_for(y_test, rng, 2), y_test)
    store.set_status(other, "completed")
    busy = store.create_run("busy", {})
    store.set_status(busy, "running")
    yield store, ids, other, busy, y_val, y_test
    store.close()


def test_candidates_say_why_a_run_cannot_join(filled):
    store, ids, other, busy, *_ = filled
    rows = {c["id"]: c for c in lab.candidates(store)}
    assert all(rows[i]["eligible"] for i in ids) and rows[other]["eligible"]
    assert not rows[busy]["eligible"] and "only completed runs" in rows[busy]["reason"]
    annotated = {c["id"]: c for c in lab.compatible_with(list(rows.values()), [ids[0]])}
    assert not annotated[other]["eligible"] and "split seed1-def" in annotated[other]["reason"]
    assert annotated[ids[1]]["eligible"]
    first_pick = {c["id"]: c for c in lab.compatible_with(list(rows.values()), [other, ids[0]])}
    assert not first_pick[ids[0]]["eligible"] and first_pick[other]["eligible"]  # the first pick sets the split


def test_loading_refuses_what_cannot_be_combined(filled):
    store, ids, other, busy, *_ = filled
    room = lab.Lab(store)
    with pytest.raises(UserError, match="at least two completed runs"):
        room.load([ids[0]])
    with pytest.raises(UserError, match="different validation splits"):
        room.load([ids[0], other])
    with pytest.raises(UserError, match=f"run {busy} .* no stored validation and test logits"):
        room.load([ids[0], busy])
    members = room.load(ids)
    assert members.num_classes == K and len(members.temperatures) == 3
    assert set(members.logits) == {"val", "test", "val_flip", "test_flip"}


def test_scores_match_hand_computation_and_scipy_mode(filled):
    store, ids, _, _, _y_val, y_test = filled
    members = lab.Lab(store).load(ids)
    scored = lab.score(members, [1, 1, 1], lab.Settings())
    probs = [np.exp(z) / np.exp(z).sum(1, keepdims=True) for z in members.logits["test"]]
    expected = (np.mean(probs, 0).argmax(1) == y_test).mean()
    assert scored["test"]["accuracy"] == pytest.approx(expected)
    assert scored["members"][0]["test_accuracy"] == pytest.approx((probs[0].argmax(1) == y_test).mean())
    vote = lab.score(members, [1, 1, 1], lab.Settings(method="vote"))
    mode = stats.mode(np.stack([p.argmax(1) for p in probs]), axis=0).mode
    assert vote["test"]["accuracy"] == pytest.approx((mode == y_test).mean())
    assert vote["val"]["nll"] is None and vote["test"]["nll"] is None  # unvoted classes: probability 0
    with pytest.raises(UserError, match="not all zero"):
        lab.score(members, [0, 0, 0], lab.Settings())
    tta = lab.score(members, [1, 1, 1], lab.Settings(tta=True))
    assert tta["test"]["nll"] != pytest.approx(scored["test"]["nll"])


def test_the_reliability_diagram_built_unvalidated_is_a_valid_figure(filled):
    """The diagram skips Plotly's validation for speed (it is redrawn on every slider move): built again
    with validation, every property must still be one Plotly knows."""
    import plotly.graph_objects as go

    from workbench.ui import plots

    store, ids, *_ = filled
    members = lab.Lab(store).load(ids)
    settings = lab.Settings()
    figure = plots.reliability_diagram(lab.reliability(members, lab.score(members, [1, 1, 1], settings), settings))
    checked = go.Figure(figure.to_dict())  # raises ValueError on an unknown property
    assert [t.name.split(" (ECE")[0] for t in checked.data][:2] == ["perfect calibration", "ensemble"]
    assert len(checked.data) == 2 + len(ids) and checked.layout.xaxis.title.text == "confidence"
    assert checked.layout.template.layout.plot_bgcolor == "white"  # plotly_white's look kept
    with pytest.raises(ValueError):
        go.Figure({**figure.to_dict(), "layout": {"no_such_property": 1}})


def test_weights_are_chosen_on_validation_only(filled):
    store, ids, *_ = filled
    members = lab.Lab(store).load(ids)
    found = {how: lab.search(members, lab.Settings(), how)["weights"] for how in lab.SEARCHES}
    for how, weights in found.items():
        assert weights[2] <= min(weights[:2]) + 1e-9, (how, weights)  # the weak member counts least
        assert max(weights) == 1.0, (how, weights)  # one scale: the largest weight is 1
    grid = lab.search(members, lab.Settings(), "grid")
    assert all(max(row["weights"]) == 1.0 for row in grid["top"]) and grid["top"][0]["weights"] == grid["weights"]
    assert lab.score(members, grid["weights"], lab.Settings())["val"]["accuracy"] == pytest.approx(grid["val_accuracy"])
    # Scrambling the test labels changes no choice: nothing is fitted on test.
    members.labels["test"] = np.random.default_rng(9).permutation(members.labels["test"])
    again = {how: lab.search(members, lab.Settings(), how)["weights"] for how in lab.SEARCHES}
    for how in lab.SEARCHES:
        np.testing.assert_allclose(again[how], found[how])
    with pytest.raises(UserError, match="a vote counts every member equally"):
        lab.search(members, lab.Settings(method="vote"), "grid")


def test_save_and_reload_an_ensemble(filled):
    store, ids, *_ = filled
    room = lab.Lab(store)
    members = room.load(ids)
    settings = lab.Settings(space="logit", temperature=True)
    scored = lab.score(members, [0.5, 0.3, 0.2], settings)
    with pytest.raises(UserError, match="give the ensemble a name"):
        lab.save(store, members, scored, settings, " ")
    ensemble_id = lab.save(store, members, scored, settings, "trio")
    saved = store.get_ensemble(ensemble_id)
    assert saved["members"] == ids and saved["method"] == "mean-logit" and saved["temperatures"]
    assert saved["weights"] == pytest.approx([1.0, 0.6, 0.4])  # saved on the sliders' scale
    assert lab.settings_of(saved) == settings
    probs, labels = lab.ensemble_probs(room, saved, "test")
    assert (probs.argmax(1) == labels).mean() == pytest.approx(saved["test_accuracy"])


def test_ensemble_command(filled, capsys):
    store, ids, other, *_ = filled
    db = str(store.path)
    assert main(["--db", db, "ensemble", *map(str, ids), "--method", "grid", "--save", "cli-trio"]) == 0
    out = capsys.readouterr().out
    assert "weights chosen by grid on validation" in out and "test:       accuracy" in out
    assert "saved as ensemble" in out and store.list_ensembles()[0]["name"] == "cli-trio"
    assert " T " not in out.splitlines()[0]  # no temperature column without temperature scaling
    assert main(["--db", db, "ensemble", *map(str, ids), "--method", "vote", "--temperature"]) == 0
    out = capsys.readouterr().out
    assert " T " in out.splitlines()[0] and "NLL n/a (vote)" in out
    assert main(["--db", db, "ensemble", str(ids[0]), str(other)]) == 2
    assert "different validation splits" in capsys.readouterr().err
    assert main(["--db", db, "ensemble", str(ids[0])]) == 2
    assert "at least two" in capsys.readouterr().err
