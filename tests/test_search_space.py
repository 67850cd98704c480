"""The search space (workbench.specs.space) and a search's settings (workbench.specs.search): the sweep syntax with
ranges, every bad part named at once, the samplers checked against the space, the `[search]` preset table, and
the store's rows for studies (store.studies). Nothing here trains."""

import re
import sqlite3

import pytest

from store import Store
from workbench.errors import UserError
from workbench.specs.run import RunSpec
from workbench.specs.search import Search, duration_text, parse_duration, study_of
from workbench.specs.space import Space

BASE = RunSpec(dataset="synthetic", epochs=3, batch_size=50, model="lenet")
ISSUE_SPACE = (
    "learning_rate=log(0.01,1) weight_decay=log(1e-5,1e-3) batch_size=[128,256,512] "
    "augment=[flip_crop; flip_crop,cutout] label_smoothing=uniform(0,0.3) epochs=int(10,40)"
)


def test_the_issues_space_parses_into_ranges_and_choices_and_applies_to_a_run():
    space = Space.parse(ISSUE_SPACE)
    kinds = {p.name: (p.kind, p.low, p.high, p.choices) for p in space.params}
    assert kinds == {
        "learning_rate": ("log", 0.01, 1.0, ()),
        "weight_decay": ("log", 1e-5, 1e-3, ()),
        "batch_size": ("choice", 0.0, 0.0, (128, 256, 512)),
        "augment": ("choice", 0.0, 0.0, ("flip_crop", "flip_crop,cutout")),
        "label_smoothing": ("uniform", 0.0, 0.3, ()),
        "epochs": ("int", 10.0, 40.0, ()),
    }
    assert not space.finite and space.grid_size() == 0
    space.check(BASE)
    spec = space.apply(
        BASE,
        {"learning_rate": 0.2, "augment": "flip_crop,cutout", "label_smoothing": 0.1, "batch_size": 256, "epochs": 12},
    )
    assert (spec.learning_rate, spec.augment, spec.loss_params, spec.batch_size, spec.epochs) == (
        0.2,
        ("flip_crop", "cutout"),
        {"label_smoothing": 0.1},
        256,
        12,
    )
    assert spec.model == "lenet" and spec.dataset == "synthetic"  # the rest from the base run


def test_the_sweep_syntax_carries_over_spaces_commas_and_fixed_settings():
    space = Space.parse("model = lenet,resnet20, learning_rate=log(0.01, 0.5); seed=3\naugment=none")
    assert [p.name for p in space.searched] == ["model", "learning_rate"]
    assert space.fixed == {"seed": 3, "augment": "none"}
    spec = space.apply(BASE, {"model": "resnet20", "learning_rate": 0.1})
    assert (spec.model, spec.seed, spec.augment) == ("resnet20", 3, ())
    grid = Space.parse("batch_size=[50,100] model=lenet resnet20")
    assert grid.finite and grid.grid_size() == 4
    assert Space.parse("epochs=int(2,64,log)").params[0].log


@pytest.mark.parametrize(
    "text, named",
    [
        ("learning_rate=log(0,1)", "`learning_rate=log(0,1)`: a log range needs both bounds above 0"),
        ("epochs=int(5,2)", "`epochs=int(5,2)`: the low bound 5 is above the high bound 2: write int(2,5)"),
        ("colour=[1,2]", "`colour=[1,2]`: 'colour' is not a setting a search can vary"),
        ("learning_rate=uniform(0.5,0.1)", "the low bound 0.5 must be below the high bound 0.1"),
        ("epochs=uniform(1,9)", "epochs is not a continuous setting (a whole-number setting: use int(a,b))"),
        ("learning_rate=int(1,3)", "learning_rate is not a whole-number setting: use log(a,b) or uniform(a,b)"),
        ("learning_rate=log(0.1)", "log() takes two bounds, low and high"),
        ("learning_rate=[0.1,fast]", "learning rates: 'fast' is not a number"),
        ("learning_rate", "write it as setting=value"),
        ("seed=1 seed=2", "`seed=2`: seed is given twice"),
        ("name=[a,b]", "'name' is not a setting a search can vary"),
        ("model_kwargs=[1,2]", "search one key of model_kwargs at a time"),
        ("seed=4", "fixes every setting it names"),
        ("", "the search space is empty"),
    ],
)
def test_a_bad_part_is_refused_with_the_part_named(text, named):
    with pytest.raises(UserError, match=re.escape(named)):
        Space.parse(text)


def test_every_bad_part_is_named_in_one_message():
    with pytest.raises(UserError) as refused:
        Space.parse("learning_rate=log(0,1) epochs=int(5,2) foo=[1,2] batch_size=[64,128]")
    message = str(refused.value)
    assert all(part in message for part in ("`learning_rate=log(0,1)`", "`epochs=int(5,2)`", "`foo=[1,2]`"))
    assert "`batch_size=[64,128]`" not in message  # the good part is not blamed


def test_values_the_run_refuses_are_found_at_the_ends_of_ranges_and_in_lists():
    for text, named in (
        ("model=[lenet,nomodel]", "`model=[lenet,nomodel]`: with model=nomodel: unknown model 'nomodel'"),
        ("label_smoothing=uniform(0,1.5)", "with label_smoothing=1.5: label_smoothing must be in [0, 1)"),
        ("batch_size=int(0,64)", "`batch_size=int(0,64)`: with batch_size=0"),
        ("augment=[flip_crop; wobble]", "`augment=[flip_crop; wobble]`: unknown augmentation 'wobble'"),
    ):
        with pytest.raises(UserError, match=re.escape(named)):
            Space.parse(text).check(BASE)


def test_a_search_checks_its_sampler_budget_and_names_and_says_its_command():
    search = Search.from_values("lr", BASE, space="learning_rate=log(0.01,1) batch_size=[50,100]", trials=12,
                                timeout="1h30m", pruner="hyperband", sampler="random", seed=3)  # fmt: skip
    assert search.check() is search and search.tag == "study:lr" and search.timeout == 5400
    assert study_of(["x", "study:lr"]) == "lr" and study_of(["sweep:a"]) is None
    command = search.to_cli(["mine"])
    assert command.startswith("python -m workbench search lr --model lenet --epochs 3 --batch-size 50")
    assert command.endswith(
        "--space 'learning_rate=log(0.01,1) batch_size=[50,100]' --trials 12 --timeout 1h30m --sampler random "
        "--sampler-seed 3 --pruner hyperband --tags mine"
    )
    with pytest.raises(UserError, match=re.escape("grid sampler needs lists only ([a,b,...]), not ranges")):
        Search.from_values("g", BASE, space="learning_rate=log(0.01,1)", sampler="grid").check()
    grid = Search.from_values("g", BASE, space="batch_size=[50,100] seed=[0,1,2]", sampler="grid", trials=30)
    assert grid.check().budget() == 6  # the grid's size, not more
    with pytest.raises(UserError, match="CMA-ES searches ranges"):
        Search.from_values("c", BASE, space="batch_size=[50,100]", sampler="cmaes").check()
    with pytest.raises(UserError, match="trials must be between 1 and"):
        Search.from_values("t", BASE, space="batch_size=[50,100]", trials=0).check()
    with pytest.raises(UserError) as refused:
        Search.from_values("bad name!", BASE, space="epochs=int(5,2)", trials="many", pruner="asha", timeout="soon")
    message = str(refused.value)
    for said in ("`epochs=int(5,2)`", "trials: 'many' is not a whole number", "time budget 'soon'", "study name"):
        assert said in message, said


def test_durations_read_and_written():
    assert parse_duration("2h") == 7200 and parse_duration("90m") == 5400 and parse_duration("45") == 45
    assert parse_duration("") is None and parse_duration(0) is None
    assert duration_text(5400) == "1h30m" and duration_text(None) == ""


def test_a_preset_search_table_and_its_mistakes():
    table = {"name": "p", "space": "learning_rate=log(0.01,1)", "trials": 4, "pruner": "none", "seed": 1}
    assert Search.from_preset(table, BASE).pruner == "none"
    with pytest.raises(UserError, match=re.escape("preset: [search] has no setting budget")):
        Search.from_preset({**table, "budget": 3}, BASE)
    with pytest.raises(UserError, match=re.escape("preset: [search] the search space has bad parts")):
        Search.from_preset({**table, "space": "learning_rate=log(0,1)"}, BASE)


def test_the_store_names_studies_and_maps_trials_to_runs(tmp_path):
    with Store(tmp_path / "w.db") as store:
        assert store.optuna_path() == tmp_path / "w-optuna.db"
        store.create_study("a", {"trials": 3}, state="searching", created_at="t0")
        with pytest.raises(UserError, match="a study named 'a' exists already"):
            store.create_study("a", {}, state="searching", created_at="t1")
        run_id = store.create_run("a-t0", {"model": "lenet"}, tags=["study:a"])
        store.add_study_trial("a", 0, run_id)
        store.update_study("a", seconds=12.5)
        assert store.study_trials("a") == {0: run_id} and store.trial_of_run(run_id) == ("a", 0)
        assert store.get_study("a")["settings"] == {"trials": 3} and store.get_study("a")["seconds"] == 12.5
        with pytest.raises(UserError, match="no study 'b'; studies: a"):
            store.get_study("b")
        store.delete_run(run_id)  # a trial's run may be deleted: the trial stays, runless
    with sqlite3.connect(tmp_path / "w.db") as conn:
        assert conn.execute("SELECT count(*) FROM study_trials").fetchone() == (1,)


def test_the_search_command_refuses_what_it_cannot_start_and_dry_runs_a_preset(tmp_path, capsys):
    from workbench.cli.main import main
    from workbench.specs.presets import load_preset

    db = str(tmp_path / "w.db")
    assert main(["--db", db, "search", "new"]) == 2
    assert "study new does not exist yet: give --space to start it" in capsys.readouterr().err
    assert main(["--db", db, "search", "s", "--space", "learning_rate=log(0,1) epochs=int(3,1)", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "`learning_rate=log(0,1)`: a log range needs both bounds above 0" in err and "`epochs=int(3,1)`" in err
    assert main(["--db", db, "search", "--preset", "search", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "study quick-search: 24 trials, sampler tpe, pruner hyperband; space learning_rate=log(0.02,0.5)" in out
    assert "dry run: nothing queued" in out and not (tmp_path / "w.db").exists()  # a dry run writes nothing
    with pytest.raises(UserError, match=re.escape("preset search.toml is a search ([search])")):
        load_preset("search")
    assert main(["--db", db, "studies"]) == 0
    assert "(no studies yet" in capsys.readouterr().out
    with Store(tmp_path / "w.db") as store:  # an existing study continues as it was set up
        store.create_study("old", Search.from_values("old", BASE, space="seed=[0,1]").to_settings(), state="stopped",
                           created_at="t0")  # fmt: skip
    assert main(["--db", db, "search", "old", "--space", "seed=[2,3]", "--dry-run"]) == 2
    assert "study old exists: `workbench search old` continues it as it was set up" in capsys.readouterr().err


@pytest.mark.parametrize(
    "sampler, pruner, space",
    [
        ("tpe", "median", "learning_rate=log(0.01,1) batch_size=[50,100] epochs=int(2,6)"),
        ("random", "hyperband", "learning_rate=log(0.01,1) augment=[flip_crop; none]"),
        ("grid", "halving", "batch_size=[50,100] seed=[0,1]"),
        ("cmaes", "none", "learning_rate=log(0.01,1) weight_decay=uniform(0,0.001) epochs=int(2,6)"),
    ],
)
def test_each_sampler_and_pruner_draws_inside_the_space_from_the_store_optuna_file(tmp_path, sampler, pruner, space):
    """Optuna's own samplers and pruners, made from a search, asked and told without training: every value
    drawn lies in its range or list, the study lives in `<store>-optuna.db`, a grid never repeats a point."""
    import optuna

    from workbench.jobs.study_setup import distributions, make_pruner, open_study

    search = Search.from_values("s", BASE, space=space, sampler=sampler, pruner=pruner, seed=0, trials=4)
    with Store(tmp_path / "w.db") as store:
        study = open_study(store, search, continuing=False)
        assert type(study.pruner) is type(make_pruner(search))
        drawn = []
        for step in range(4):
            trial = study.ask(distributions(search.space))
            drawn.append(tuple(sorted(trial.params.items())))
            trial.report(0.1 * step, 1)
            study.tell(trial, 0.1 * step)
            spec = search.space.apply(BASE, trial.params)
            for p in search.space.searched:
                value = trial.params[p.name]
                assert value in p.choices if p.kind == "choice" else p.low <= value <= p.high, (p, value)
            spec.validate()
        assert len(optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'w-optuna.db'}").trials) == 4
        if sampler == "grid":
            assert len(set(drawn)) == 4  # the 2 x 2 grid, each point once
