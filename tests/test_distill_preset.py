"""presets/distill.toml, the distillation benchmark as a preset: the fast recipe's teachers, an [[ensembles]]
table that train-all saves once they completed, and students that wait for it. The plan and the ensemble on
store rows (no training); the whole train-all on a tiny synthetic preset is opt-in (-m slow)."""

import numpy as np
import pytest
from conftest import completed_run

from workbench.cli.main import main
from workbench.cli.presets import plan_preset, save_ensembles
from workbench.errors import UserError
from workbench.specs import DistillSpec
from workbench.specs.presets import PresetEnsemble, load_preset

TEACHERS = ("distill-teacher-s0", "distill-teacher-s1", "distill-teacher-s2")


def test_the_distill_preset_is_the_benchmarks_recipe():
    preset = load_preset("distill")
    fast = load_preset("fast")[0].to_dict()
    recipe = lambda spec: {k: v for k, v in spec.to_dict().items() if k in fast and k not in ("name", "seed")}  # noqa: E731
    assert all(recipe(spec) == {k: v for k, v in fast.items() if k not in ("name", "seed")} for spec in preset)
    assert [(s.name, s.seed) for s in preset[:3]] == [(name, seed) for seed, name in enumerate(TEACHERS)]
    assert preset.ensembles == (PresetEnsemble("distill-teacher", TEACHERS),)
    students = [s for s in preset if isinstance(s, DistillSpec)]
    assert [(s.seed, s.distill_mode) for s in students] == [
        (seed, m) for seed in (10, 11, 12) for m in ("online", "cached")
    ]
    assert all(s.teacher == "ensemble:distill-teacher" and s.temperature == DistillSpec.temperature for s in students)
    twins = [s for s in preset[3:] if not isinstance(s, DistillSpec)]
    assert [s.seed for s in twins] == [10, 11, 12]


def test_an_ensembles_table_names_runs_of_the_preset(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[runs]]\nname = "a"\nmodel = "lenet"\n\n[[ensembles]]\nname = "e"\nmembers = ["a", "b"]\n')
    with pytest.raises(UserError, match=r"ensemble 1 \(e\): no run named b in this preset"):
        load_preset(path)


def test_students_wait_for_the_presets_ensemble_which_is_saved_once_its_runs_completed(store):
    preset = load_preset("distill")
    plan = plan_preset(preset, store)
    assert [s.action for s in plan[:6]] == ["new", "new", "new", "new", "wait", "wait"]
    assert "no ensemble 'distill-teacher'" in plan[4].reason
    lines: list[str] = []
    assert save_ensembles(preset.ensembles, store, out=lines.append) == []  # its runs have not completed
    rng = np.random.default_rng(0)
    labels = np.arange(50) % 10
    for spec in preset[:3]:
        run_id = completed_run(
            store, spec.name, spec.to_dict(), split_id="s0", logits={"val": labels, "test": labels}, rng=rng
        )
        (store.run_dir(run_id) / "model.keras").write_bytes(b"not read here")
        store.update_run(run_id, checkpoint_path=str(store.run_dir(run_id) / "model.keras"))
    saved = save_ensembles(preset.ensembles, store, out=lines.append)
    ensemble = store.get_ensemble(saved[0])
    assert (
        ensemble["name"] == "distill-teacher" and ensemble["members"] == [1, 2, 3] and ensemble["weights"] == [1, 1, 1]
    )
    assert lines[0].startswith(f"saved ensemble {saved[0]} distill-teacher (runs 1, 2, 3)")
    assert save_ensembles(preset.ensembles, store, out=lines.append) == []  # saved once
    again = plan_preset(preset, store)
    assert [s.action for s in again[:6]] == ["skip", "skip", "skip", "new", "new", "new"]
    # a student that completed is skipped like any run (its resolved teacher members are not compared)
    student = again[4].spec.resolved(store)
    completed_run(store, student.name, student.to_dict(), kind="distill", split_id="s0")
    assert plan_preset(preset, store)[4].action == "skip"


@pytest.mark.slow  # three tiny trainings through the CLI, each in its own process (110 s at load 11 here)
def test_train_all_trains_the_teachers_saves_their_ensemble_then_the_student(tmp_path, capsys):
    data = 'dataset = "synthetic"\ndataset_options = { n_train = 300, n_test = 60, num_classes = 4 }\n'
    recipe = f'model = "lenet"\nepochs = 1\nbatch_size = 50\nschedule = "cosine"\ngpus = 0\n{data}'
    path = tmp_path / "tiny.toml"
    path.write_text(
        f"[defaults]\n{recipe}\n"
        '[[runs]]\nname = "t0"\nseed = 0\n\n[[runs]]\nname = "t1"\nseed = 1\n\n'
        '[[ensembles]]\nname = "pair"\nmembers = ["t0", "t1"]\n\n'
        '[[runs]]\nname = "student"\nteacher = "ensemble:pair"\n'
    )
    db = tmp_path / "runs" / "workbench.db"
    assert main(["--db", str(db), "train-all", "--preset", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  wait     student: no ensemble 'pair'" in out and "1 waiting for their teacher" in out
    assert "saved ensemble 1 pair (runs 1, 2)" in out and "  new      student" in out
    from store import Store

    with Store(db) as store:
        runs = {r["name"]: r for r in store.list_runs()}
        assert runs["student"]["status"] == "completed", runs["student"]["error"]
        assert runs["student"]["kind"] == "distill" and runs["student"]["spec"]["teacher_members"] == {
            "1": 0.5,
            "2": 0.5,
        }
