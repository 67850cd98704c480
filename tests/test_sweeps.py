"""Sweeps: the expansion (workbench.specs.sweep), sweep presets, the `sweep`/`sweeps` commands and the sweep
view's tables (workbench.views.sweeps). Nothing here trains: runs are queued into a stand-in queue or
written into the store as a finished job would leave them."""

import re
from datetime import datetime

import pytest

from workbench.cli.main import main
from workbench.cli.presets import plan_preset, run_preset
from workbench.errors import UserError
from workbench.jobs.estimate_many import estimate_many
from workbench.specs.presets import load_preset
from workbench.specs.run import RunSpec
from workbench.specs.sweep import Sweep, default_name, parse_axis, submit_sweep, sweep_of
from workbench.views import sweeps as views

BASE = RunSpec(dataset="synthetic", epochs=1, batch_size=50, model="lenet")


class FakeQueue:
    """What submit_sweep needs of a JobQueue: its GPUs and submit (validated specs recorded, ids counted)."""

    def __init__(self):
        self.gpus, self.submitted, self.by = [], [], []

    def submit(self, spec, *, tags=(), by=None):
        spec.validate(available_gpus=0)
        self.submitted.append((spec, list(tags)))
        self.by.append(by)
        return len(self.submitted)


def test_axes_parse_text_lists_and_ranges():
    assert parse_axis("model", "resnet20, lenet resnet20") == ("resnet20", "lenet")
    assert parse_axis("seed", "0-2, 5") == (0, 1, 2, 5)
    assert parse_axis("seed", [3, 1.0]) == (3, 1)
    assert parse_axis("learning_rate", "0.1 0.05") == (0.1, 0.05)
    assert parse_axis("augment", "flip_crop; cutout,flip_crop; none") == (("flip_crop",), ("flip_crop", "cutout"), ())
    assert parse_axis("augment", [["flip_crop"], "none"]) == (("flip_crop",), ())
    assert parse_axis("loss", "") == () and parse_axis("loss", None) == ()
    with pytest.raises(UserError, match="learning rates: 'fast' is not a number"):
        parse_axis("learning_rate", "0.1,fast")
    with pytest.raises(UserError, match=re.escape("seeds: '1.5' is not a whole number")):
        parse_axis("seed", "1.5")
    with pytest.raises(UserError, match="seed range '4-1' must go up"):
        parse_axis("seed", "4-1")
    with pytest.raises(UserError, match="cannot sweep over 'name'"):
        parse_axis("name", "a,b")


def test_the_cross_product_names_counts_and_command():
    sweep = Sweep.from_values(
        "study",
        BASE,
        {"seed": "0,1", "loss": ["cross_entropy", "focal"], "learning_rate": "0.1", "model": "lenet,resnet20"},
    )
    assert list(sweep.axes) == ["model", "loss", "learning_rate", "seed"]  # the form's order, seeds last
    assert sweep.count_text() == "2 models × 2 losses × 1 learning rate × 2 seeds = 8 runs"
    specs = sweep.validate()
    assert [s.name for s in specs[:3]] == ["study-lenet-ce-s0", "study-lenet-ce-s1", "study-lenet-focal-s0"]
    assert {(s.model, s.loss, s.seed, s.learning_rate, s.epochs) for s in specs} == {
        (m, loss, s, 0.1, 1) for m in ("lenet", "resnet20") for loss in ("cross_entropy", "focal") for s in (0, 1)
    }
    command = sweep.to_cli(["mine"])
    assert command.startswith("python -m workbench sweep study --epochs 1 --batch-size 50 --dataset synthetic")
    assert "--model " not in command and "--models lenet,resnet20 --losses cross_entropy,focal" in command
    assert command.endswith("--learning-rates 0.1 --seeds 0,1 --tags mine")
    assert default_name(datetime(2026, 11, 30, 23, 5)) == "sweep-1130-2305"


def test_the_command_line_of_a_sweep_queues_the_same_runs(tmp_path, capsys):
    sweep = Sweep.from_values("cmd", BASE, {"augment": "flip_crop; none", "seed": "0-1"})
    import shlex

    assert main(["--db", str(tmp_path / "w.db"), *shlex.split(sweep.to_cli())[3:], "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "sweep cmd: 2 augmentations × 2 seeds = 4 runs" in out
    assert [line.strip() for line in out.splitlines()[1:5]] == [s.name for s in sweep.specs()]
    assert "of training in all (rough), one run at a time on the CPU" in out


def test_every_run_is_validated_before_any_is_queued():
    queue = FakeQueue()
    sweep = Sweep.from_values("bad", BASE, {"model": "lenet,nin", "learning_rate": "0.1,-1"})
    with pytest.raises(
        UserError,
        match=r"run 2 of 4 \(model lenet, learning rate -1\) is refused: "
        r"learning rate must be > 0.*Nothing was queued",
    ):
        submit_sweep(queue, sweep)
    assert queue.submitted == []
    with pytest.raises(UserError, match="unknown model 'nope'"):
        Sweep.from_values("bad", BASE, {"model": "lenet,nope"}).validate()
    with pytest.raises(UserError, match="sweep name 'two words' is not usable"):
        Sweep.from_values("two words", BASE, {"seed": "0,1"})
    with pytest.raises(UserError, match="several values for at least one setting"):
        Sweep.from_values("empty", BASE, {"seed": ""}).specs()
    with pytest.raises(UserError, match="makes 300 runs, more than 200"):
        Sweep.from_values("big", BASE, {"seed": "0-99", "loss": "cross_entropy,focal,label_smoothing"}).specs()
    good = Sweep.from_values("good", BASE, {"seed": "0,1"})
    assert submit_sweep(queue, good, ["mine", "sweep:good"]) == [1, 2]
    assert [tags for _, tags in queue.submitted] == [["mine", "sweep:good"]] * 2
    assert sweep_of(queue.submitted[0][1]) == "good" and sweep_of(["x"]) is None


def test_the_classic_preset_is_the_seeds_table_as_one_sweep(tmp_path, capsys):
    classic = load_preset("classic")
    assert classic.sweep.name == "classic" and classic.tags == ("sweep:classic",)
    assert classic.sweep.count_text() == "4 models × 2 losses × 1 seed = 7 runs (1 combination skipped)"
    assert [s.name for s in classic][:2] == ["classic-wrn_28_10-ce-s0", "classic-wrn_28_10-focal-s0"]
    assert len(load_preset("classic", seeds="0-2")) == 21
    assert load_preset("quick").tags == ()  # a list preset as before
    with pytest.raises(UserError, match="is a list of runs, not a sweep"):
        load_preset("quick", seeds="0,1")
    assert main(["--db", str(tmp_path / "w.db"), "train-all", "--preset", "classic", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "sweep classic: 4 models × 2 losses × 1 seed = 7 runs (1 combination skipped), tagged "
        "sweep:classic\n  new      classic-wrn_28_10-ce-s0\n"
    )


@pytest.mark.parametrize(
    "content, message",
    [
        ("[sweep]\nname = 'x'\nloss = 'focal'\n", "loss must be a list"),
        ("[sweep]\nname = 'x'\nseed = [0, 1]\n[[runs]]\nname = 'a'\n", "both \\[\\[runs\\]\\] and a \\[sweep\\]"),
        (
            "[sweep]\nname = 'x'\nseed = [0, 1]\nskip = [{ loss = 'focal' }]\n",
            "skip names 'loss', which the sweep does not vary",
        ),
        ("[sweep]\nname = 'x'\nloss = ['focal']\nskip = [{ loss = 'focall' }]\n", "not one of the sweep's values"),
        ("[sweep]\nname = 'x'\nseed = [0]\n[sweep.per_model.nin]\nbatch_size = 64\n", "does not train"),
        ("[sweep]\nname = 'x'\nseed = [0]\n[sweep.per_model.resnet20]\nseed = 4\n", "sets seed"),
        ("[sweep]\nseed = [0]\n", "sweep name '' is not usable"),
        ("[defaults]\nepoch = 3\n[sweep]\nname = 'x'\nseed = [0]\n", "preset bad.toml: unknown run setting"),
    ],
)
def test_bad_sweep_presets(tmp_path, content, message):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        load_preset(str(path))


def _finish(store, spec, *, test, val, seconds=60.0, params=1000, tags=(), device="GPU:0"):
    """A completed run as a finished job leaves it (no training)."""
    run_id = store.create_run(spec.name, spec.to_dict(), tags=tags, dataset=spec.dataset)
    store.set_status(run_id, "running")
    store.log_epoch(run_id, 1, lr=0.1, loss=1.0, accuracy=0.5, val_loss=1.0, val_accuracy=val, seconds=seconds)
    store.update_run(run_id, test_accuracy=test, train_seconds=seconds, params=params, device=device)
    store.set_status(run_id, "completed")
    return run_id


def test_a_sweep_preset_adopts_matching_runs_and_queues_the_rest_under_its_tag(store, tmp_path):
    path = tmp_path / "mini.toml"
    path.write_text(
        "[defaults]\nmodel = 'lenet'\ndataset = 'synthetic'\nepochs = 1\n"
        "[sweep]\nname = 'mini'\nloss = ['cross_entropy', 'focal']\nseed = [0]\n"
    )
    preset = load_preset(str(path))
    # An earlier run with the same settings under another name (and without the tag) counts as done.
    earlier = _finish(store, preset[0].replace(name="my-own-name"), test=0.5, val=0.5)
    plan = plan_preset(preset, store)
    assert [(s.action, s.run_id) for s in plan] == [("skip", earlier), ("new", 0)]
    queue = FakeQueue()
    plan[1].action = "skip"  # nothing trains here: only the adoption of the finished run is run
    plan[1].run_id = earlier
    assert run_preset(plan, store, queue=queue, poll=0, out=lambda line: None) == 0
    assert store.get_run(earlier)["tags"] == ["sweep:mini"]
    assert plan_preset(preset, store)[1].tags == ("sweep:mini",)


@pytest.fixture
def study(store):
    """A finished sweep: two networks x (cross-entropy, focal) x three seeds; focal adds 1.0 +- 0.1 points
    to lenet and nothing clear to resnet20 (+0.3, -0.4, +0.2)."""
    sweep = Sweep.from_values("study", BASE, {"model": "lenet,resnet20", "loss": "cross_entropy,focal", "seed": "0-2"})
    gains = {"lenet": (1.0, 1.1, 0.9), "resnet20": (0.3, -0.4, 0.2)}
    for spec in sweep.specs():
        gain = gains[spec.model][spec.seed] if spec.loss == "focal" else 0.0
        test = (60.0 + spec.seed + (10 if spec.model == "resnet20" else 0) + gain) / 100
        _finish(
            store,
            spec,
            test=test,
            val=test + 0.01,
            seconds=120.0 * (1 + spec.seed),
            params=62006 if spec.model == "lenet" else 272474,
            tags=[sweep.tag],
        )
    other = store.create_run("outside", BASE.to_dict(), tags=["sweep:other"])
    store.set_status(other, "running")
    return store


def test_the_sweeps_table_has_one_row_per_setting_with_the_seeds_spread(study):
    runs = views.sweep_runs(study.list_runs(), "study")
    assert [s["name"] for s in views.sweep_names(study.list_runs())] == ["other", "study"]
    assert views.sweep_choice(views.sweep_names(study.list_runs())[1]) == "study (12 runs, 12 completed)"
    assert views.parse_sweep_choice("study (12 runs, 12 completed)") == "study"
    assert views.table_columns(runs) == [
        "Network",
        "GPUs",
        "Parameters",
        "Batch",
        "Epochs",
        "Loss",
        "Seeds",
        "Training time",
        "Val acc %",
        "Test acc %",
    ]
    rows = views.sweep_table(runs)
    assert [(r["Network"], r["Loss"], r["Seeds"]) for r in rows] == [
        ("lenet", "cross_entropy", "3/3"),
        ("lenet", "focal", "3/3"),
        ("resnet20", "cross_entropy", "3/3"),
        ("resnet20", "focal", "3/3"),
    ]
    first = rows[0]
    assert (first["GPUs"], first["Parameters"], first["Batch"], first["Epochs"]) == ("1", "62.0k", "50", "1")
    assert first["Test acc %"] == "61.00 ± 1.00" and first["Val acc %"] == "62.00 ± 1.00"
    assert first["Training time"] == "4m 00s"  # the mean of 2, 4 and 6 minutes
    with pytest.raises(UserError, match="no runs are tagged 'sweep:nope'"):
        views.sweep_runs(study.list_runs(), "nope")


def test_the_paired_comparison_reads_which_loss_helps_which_network(study):
    runs = views.sweep_runs(study.list_runs(), "study")
    assert views.factors(runs) == ["model", "loss"]
    assert views.factor_values(runs, "loss") == ["cross_entropy", "focal"]
    rows = {r["Setting"]: r for r in views.paired(runs, "loss")}
    lenet, resnet = rows["lenet"], rows["resnet20"]
    assert lenet["Compared"] == "focal − cross_entropy" and lenet["Seeds"] == 3
    assert lenet["Difference (pp)"] == "+1.00" and lenet["Spread (std, pp)"] == "0.10"
    assert lenet["Reading"].startswith("focal helps")
    assert resnet["Difference (pp)"] == "+0.03" and resnet["Reading"].startswith("no clear difference")
    # The other way round: networks compared per loss.
    by_model = views.paired(runs, "model", baseline="lenet")
    assert [r["Setting"] for r in by_model] == ["cross_entropy", "focal"]
    assert by_model[0]["Difference (pp)"] == "+10.00"
    with pytest.raises(UserError, match="does not vary 'schedule'"):
        views.paired(runs, "schedule")
    assert views.verdict(0.5, 0.0, 1, "focal").startswith("one seed only")


def test_sweeps_command_prints_the_table_and_the_comparison(study, capsys):
    db = str(study.path)
    assert main(["--db", db, "sweeps"]) == 0
    assert "study: 12 runs, 12 completed" in capsys.readouterr().out
    assert main(["--db", db, "sweeps", "study"]) == 0
    out = capsys.readouterr().out
    assert "Network   GPUs  Parameters  Batch  Epochs  Loss" in out and "61.00 ± 1.00" in out
    assert "paired by seed, test accuracy (loss):" in out and "focal helps" in out
    assert main(["--db", db, "sweeps", "nope"]) == 2


def test_a_sweeps_time_adds_up_its_runs_estimated_once_per_cost(study):
    specs = Sweep.from_values("t", BASE, {"seed": "0-3"}).specs()
    one = estimate_many(specs[:1], study, 0)
    four = estimate_many(specs, study, 0)
    assert four.seconds == pytest.approx(4 * one.seconds) and four.wall == four.seconds
    on_gpus = estimate_many(specs, study, 4)  # one GPU each: four side by side
    assert on_gpus.side_by_side == 4
    assert "one run at a time on the CPU. From " in views.time_text(four)  # and what it rests on


def test_the_sweeps_table_shows_the_reviewed_test_accuracy_beside_the_original_when_there_are_reviews(study):
    runs = views.sweep_runs(study.list_runs(), "study")
    reviewed = [{**r, "reviewed_test_accuracy": r["test_accuracy"] + 0.02} for r in runs]
    assert views.table_columns(reviewed)[-2:] == ["Test acc %", "Reviewed test %"]
    first = views.sweep_table(reviewed)[0]
    assert first["Test acc %"] == "61.00 ± 1.00" and first["Reviewed test %"] == "63.00 ± 1.00"
    assert "Reviewed test %" not in views.table_columns(runs)  # no reviews: no column
