"""The headless CLI and presets: flags <-> RunSpec, train/runs/export end to end, train-all reruns."""

import csv
import os
import re
import subprocess
import sys
import tomllib
from importlib import import_module
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, logits_for

from store import Store
from workbench.cli.main import build_parser, main
from workbench.cli.presets import plan_preset, run_preset
from workbench.errors import UserError
from workbench.jobs.queue import JobQueue
from workbench.specs.flags import parse_key_values, spec_from_args
from workbench.specs.presets import load_preset
from workbench.specs.run import RunSpec

TINY_FLAGS = [
    "--model",
    "resnet20",
    "--model-kwargs",
    "depth=8,base_width=4",
    "--dataset",
    "synthetic",
    "--dataset-options",
    "n_train=300,n_test=60",
    "--batch-size",
    "50",
    "--schedule",
    "cosine",
    "--learning-rate",
    "0.05",
]


def test_every_spec_field_has_a_documented_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["train", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--model",
        "--model-kwargs",
        "--loss-params",
        "--augment",
        "--schedule",
        "--warmup-epochs",
        "--gpus",
        "--precision",
        "--xla",
        "--no-xla",
        "--data",
        "--seed",
        "--batch-size",
        "--train-subset",
    ):
        assert flag in text
    assert "default: 0.1" in text and "cross_entropy, focal or label_smoothing" in text


def test_spec_round_trips_through_its_cli_command():
    spec = RunSpec.from_dict(
        {
            "model": "wrn_28_10",
            "model_kwargs": {"dropout": 0.3},
            "loss": "focal",
            "loss_params": {"gamma": 1.5},
            "augment": ["cutout", "flip_crop"],
            "augment_params": {"cutout_size": 8},
            "schedule": "step",
            "schedule_params": {"milestones": [0.5, 0.75], "gamma": 0.1},
            "epochs": 250,
            "batch_size": 120,
            "gpus": 2,
            "precision": "mixed_float16",
            "xla": True,
            "data_path": "/data/my cifar.tar.gz",
            "name": "wrn focal",
        }
    )
    command = spec.to_cli()
    assert command.startswith("python -m workbench train --model wrn_28_10")
    assert "'/data/my cifar.tar.gz'" in command and "--augment flip_crop,cutout" in command
    import shlex

    args = build_parser().parse_args(shlex.split(command)[3:])
    assert spec_from_args(args, RunSpec) == spec
    assert RunSpec().to_cli() == "python -m workbench train"


def test_key_value_parsing():
    assert parse_key_values("depth=16,widen_factor=4,se=true,name=stage3") == {
        "depth": 16,
        "widen_factor": 4,
        "se": True,
        "name": "stage3",
    }
    assert parse_key_values("milestones=[0.3,0.6],gamma=0.2") == {"milestones": [0.3, 0.6], "gamma": 0.2}
    assert parse_key_values('{"a": 1}') == {"a": 1} and parse_key_values("none") == {}
    with pytest.raises(UserError, match="is not key=value"):
        parse_key_values("depth16")


def test_train_runs_and_export_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = str(tmp_path / "w.db")
    assert main(["--db", db, "train", *TINY_FLAGS, "--epochs", "2", "--tags", "smoke,cli"]) == 0
    out = capsys.readouterr().out
    assert "run 1 epoch 2/2" in out and "run 1 completed: best val" in out
    assert "Time on this CPU: ~" in out and "2 epochs of 250 images" in out  # the estimate, before it starts
    with Store(db) as store:
        test_accuracy = store.get_run(1)["test_accuracy"]
    assert f"test {100 * test_accuracy:.2f}%" in out  # percentages, as the page shows them
    assert main(["runs", "--db", db]) == 0  # the global flag after the subcommand works too
    table = capsys.readouterr().out
    assert "completed" in table and "2/2" in table and f"{100 * test_accuracy:.2f}%" in table
    assert main(["--db", db, "export", "1", "--format", "csv"]) == 0
    with open(tmp_path / "run-1.csv") as exported:
        rows = list(csv.DictReader(exported))
    assert [r["epoch"] for r in rows] == ["1", "2"] and float(rows[1]["val_accuracy"]) >= 0
    assert main(["--db", db, "export", "1", "--format", "npz", "-o", str(tmp_path / "x.npz")]) == 0
    with np.load(tmp_path / "x.npz") as archive:
        assert archive["logits_test"].shape == (60, 10) and archive["labels_test"].shape == (60,)
        assert set(archive.files) >= {"logits_val", "logits_val_flip", "labels_val"}
    with Store(db) as store:
        assert store.get_run(1)["tags"] == ["smoke", "cli"]


class _EndsAfter:
    """A queue stand-in for `follow` whose runs end after `polls` looks: the store row is what is read."""

    def __init__(self, polls: int):
        self.polls = polls

    def wait(self, run_id, timeout=None):
        self.polls -= 1
        return self.polls < 0


def test_following_a_run_says_what_it_does_between_epochs(tmp_path, capsys):
    """During the final evaluation (minutes for a big test split) the CLI says so, with its batches and
    the time left, as the live panel does, instead of going quiet after the last epoch."""
    from workbench.cli.follow import follow
    from workbench.constants import RunPhase

    with Store(tmp_path / "w.db") as store:
        run_id = store.create_run("evaluating", {"epochs": 2})
        store.set_status(run_id, "running")
        store.update_run(run_id, phase=RunPhase.EVAL_TEST, step=10, eval_steps=40, step_seconds=5.0, epochs_done=2)
        assert follow(_EndsAfter(1), store, [run_id], every=0) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"run {run_id}: evaluating test (10 of 40 batches)")
    assert "remaining ~0m 15s" in lines[0]  # 30 batches left at the pass's 2 batches a second


def test_ensemble_output_uses_percentages_like_the_page(tmp_path, capsys):
    """Accuracy and ECE as the Ensemble tab shows them (percent, two decimals); NLL stays a number."""
    from workbench.ensemble import lab

    rng = np.random.default_rng(0)
    labels = {split: rng.integers(0, 10, 200) for split in ("val", "test")}
    with Store(tmp_path / "w.db") as store:
        for skill in (2.0, 1.0):
            run_id = store.create_run(f"skill-{skill}", {"model": "resnet20"}, split_id="seed0-abc")
            for split, y in labels.items():
                logits = rng.normal(0, 1, (len(y), 10)).astype(np.float32)
                logits[np.arange(len(y)), y] += skill
                store.save_logits(run_id, split, logits, y)
            store.set_status(run_id, "running")
            store.set_status(run_id, "completed")
        scored = lab.score(lab.Lab(store).load([1, 2]), [1.0, 1.0], lab.Settings())
    assert main(["ensemble", "1", "2", "--method", "uniform", "--db", str(tmp_path / "w.db")]) == 0
    out = capsys.readouterr().out
    test, member = scored["test"], scored["members"][0]
    assert (
        f"test:       accuracy {100 * test['accuracy']:.2f}%  NLL {test['nll']:.4f}  ECE {100 * test['ece']:.2f}%"
        in out
    )
    assert f"{100 * member['test_ece']:.2f}%" in out.splitlines()[1]
    # Translate TTA averages the translated views in, as the tab's checkbox does; runs without them are told why.
    assert main(["ensemble", "1", "2", "--translate", "--db", str(tmp_path / "w.db")]) == 2
    assert "translate test-time augmentation needs" in capsys.readouterr().err
    with Store(tmp_path / "w.db") as store:
        for run_id in (1, 2):
            for split, y in labels.items():
                store.save_logits(run_id, f"{split}_translate", logits_for(y, rng, 1.5), y)
        scored = lab.score(lab.Lab(store).load([1, 2]), [1.0, 1.0], lab.Settings(translate=True))
        assert scored["test"]["accuracy"] != test["accuracy"]
    assert main(["ensemble", "1", "2", "--method", "uniform", "--translate", "--db", str(tmp_path / "w.db")]) == 0
    out = capsys.readouterr().out
    assert f"test:       accuracy {100 * scored['test']['accuracy']:.2f}%" in out and "translate TTA" in out


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys):
    db = str(tmp_path / "w.db")
    assert main(["--db", db, "train", "--model", "resnet7"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown model 'resnet7'; choose one of:") and "Traceback" not in err
    assert main(["--db", db, "export", "99"]) == 2
    assert "no run 99" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--epochs", "ten"])
    assert exit_.value.code == 2 and "epochs must be an integer" in capsys.readouterr().err
    (tmp_path / "notadb").write_text("hello")
    assert main(["--db", str(tmp_path / "notadb"), "runs"]) == 2
    assert "is not a SQLite database" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command, estimate",
    [
        (
            ["train", "--dry-run", "--epochs", "3"],
            r"Time on this CPU: ~\d+h? ?\d+m( \d+s)? \(rough\) — ~\d+m \d+s to start, 3 epochs of .*"
            r"From the resnet constants timed with resnet20 on .* on 20\d\d-\d\d-\d\d.*"
            r"brought to an otherwise idle machine",
        ),
        (
            ["finetune", "--dry-run"],
            r"Time on this CPU: ~\d+h? ?\d+m( \d+s)? \(rough\) — .*\d+ epochs of .*"
            r"From the inception_v3 fine-tune constants timed with",
        ),
        (
            ["sweep", "--dry-run", "--seeds", "0,1", "--epochs", "2"],
            r"~\d+h? ?\d+m( \d+s)? of training in all.* From the resnet constants timed with",
        ),
        (
            ["train-all", "--dry-run", "--preset", "quick"],
            r"~\d+h? ?\d+m( \d+s)? of training in all.* From the \w+ constants timed with",
        ),
    ],
    ids=["train", "finetune", "sweep", "train-all"],
)
def test_dry_runs_estimate_and_write_nothing(tmp_path, monkeypatch, capsys, command, estimate):
    """Issue 23: `train-all --dry-run` created the store and gave no time estimate. Every dry run says what
    would run and how long, and leaves no store, folder or lock behind (also none in the working folder)."""
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "new" / "w.db"
    assert main(["--db", str(db), *command]) == 0
    out = capsys.readouterr().out
    assert re.search(estimate, out), out
    assert "dry run: nothing queued" in out
    assert list(tmp_path.iterdir()) == []


def _write_preset(path, epochs=1):
    path.write_text(f"""
description = "two tiny runs"
[defaults]
model = "resnet20"
model_kwargs = {{ depth = 8, base_width = 4 }}
dataset = "synthetic"
dataset_options = {{ n_train = 300, n_test = 60 }}
batch_size = 50
epochs = {epochs}
schedule = "cosine"
learning_rate = 0.05

[[runs]]
name = "tiny-ce"
loss = "cross_entropy"

[[runs]]
name = "tiny-focal"
loss = "focal"
""")
    return path


def test_train_all_skips_completed_and_resumes_interrupted(tmp_path):
    preset = load_preset(str(_write_preset(tmp_path / "tiny.toml")))
    lines = []
    with Store(tmp_path / "w.db") as store:
        # Jobs in threads: the planning and reporting are tested here (the CLI tests run child processes).
        queue = JobQueue(store, devices=[], isolate=False)
        plan = plan_preset(preset, store)
        assert [s.action for s in plan] == ["new", "new"]
        assert run_preset(plan, store, queue=queue, poll=0.2, out=lines.append) == 0
        assert any(line.startswith("[2/2] run 2 tiny-focal: completed") for line in lines)
        assert any(line.startswith("overall: 2/2 epochs (100%)") for line in lines)
        assert [s.action for s in plan_preset(preset, store)] == ["skip", "skip"]
        store.set_status(2, "interrupted")
        store.update_run(2, test_accuracy=None)
        second = plan_preset(preset, store)
        assert [(s.action, s.run_id) for s in second] == [("skip", 1), ("resume", 2)]
        assert run_preset(second, store, queue=queue, poll=0.2, out=lines.append) == 0
        assert store.get_run(2)["status"] == "completed" and len(store.list_runs()) == 2
        queue.shutdown()
    # A changed setting under the same name is a new run, not a skip.
    changed = load_preset(str(_write_preset(tmp_path / "tiny2.toml", epochs=2)))
    with Store(tmp_path / "w.db") as store:
        assert [s.action for s in plan_preset(changed, store)] == ["new", "new"]


def test_shipped_presets_are_valid():
    classic = load_preset("classic")
    assert [(s.model, s.loss, s.batch_size) for s in classic] == [
        ("wrn_28_10", "cross_entropy", 128),
        ("wrn_28_10", "focal", 128),
        ("densenet_bc_160_24", "cross_entropy", 64),
        ("densenet_bc_160_24", "focal", 64),
        ("resnext29_8x64d", "cross_entropy", 120),
        ("resnext29_8x64d", "focal", 120),
        ("se_resnext29_4x64d", "cross_entropy", 120),
    ]
    assert all(s.epochs == 250 and s.schedule == "step" and s.augment == ("flip_crop",) for s in classic)
    for spec in classic + load_preset("quick"):
        spec.validate(available_gpus=8)


@pytest.mark.parametrize(
    "content, message",
    [
        ("[[runs]]\nmodel = 'resnet20'\n", "every run needs a name"),
        ("[[runs]]\nname = 'a'\n[[runs]]\nname = 'a'\n", "names runs twice: a"),
        ("[[runs]]\nname = 'a'\nepoch = 3\n", "unknown run setting"),
        ("runs = [", "not valid TOML"),
        ("description = 'empty'\n", "lists no"),
    ],
)
def test_bad_presets(tmp_path, content, message):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        load_preset(str(path))
    with pytest.raises(UserError, match="no preset 'nope'; choose one of: classic"):
        load_preset("nope")


def test_project_declares_the_workbench_command_and_its_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    module, function = project["project"]["scripts"]["workbench"].split(":")
    assert callable(getattr(import_module(module), function))
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    tops = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert {"workbench", "store", "models"} <= tops and all(f"{top}*" in packages for top in tops - {"tests"})


def test_workbench_command_works_from_any_folder(tmp_path):
    """`make install` installs this checkout editable: its `workbench` command runs outside the checkout."""
    bin_dir = Path(sys.executable).parent
    command = bin_dir / "workbench"
    if not command.exists():
        pytest.skip(f"no workbench command in {bin_dir}: `make install` installs it (pip install -e .)")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""}
    where = subprocess.run(
        [sys.executable, "-c", "import workbench; print(workbench.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if Path(where.stdout.strip()).parents[1] != ROOT:
        pytest.skip(f"{command} runs another checkout ({where.stdout.strip() or where.stderr[-200:]})")
    usage = subprocess.run([str(command), "--help"], cwd=tmp_path, capture_output=True, text=True, env=env, check=False)
    assert usage.returncode == 0 and usage.stdout.startswith("usage: workbench"), usage.stderr[-2000:]
    runs = subprocess.run(
        [str(command), "runs", "--db", "here.db"], cwd=tmp_path, capture_output=True, text=True, env=env, check=False
    )
    assert runs.returncode == 0 and "(no runs yet: workbench train --help)" in runs.stdout, runs.stderr[-2000:]
    assert (tmp_path / "here.db").exists()
