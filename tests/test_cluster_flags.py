"""The --ray flags of the app and the CLI, refused before anything heavy starts (no cluster needed)."""

import re
import socket

import pytest

import app
from workbench.cli.main import main as cli


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--ray", "127.0.0.1:{port}"], r"--ray 127.0.0.1:\d+: nothing answers there .*ray start --head"),
        (["--ray", "head-node"], r"give the head's HOST:PORT"),
        (["--ray", "ray://10.0.0.5:10001"], r"Ray Client addresses \(ray://\) are not supported"),
        (["--storage", "/tmp/x"], r"--storage and --ray-resources apply to jobs on a Ray cluster"),
        (["--ray", "local", "--retries", "-1"], r"--retries must be 0 or more"),
        (["--ray", "local", "--ray-resources", "{trainer: 1}"], r"--ray-resources must be JSON"),
        (["--ray", "local", "--ray-resources", '{"GPU": 1}'], r"GPUs from the run's --gpus"),
    ],
)
def test_bad_cluster_flags_are_refused_in_the_app_and_the_cli(argv, message, capsys, tmp_path):
    argv = [a.replace("{port}", str(_unused_port())) for a in argv]
    assert app.main([*argv, "--db", str(tmp_path / "app.db"), "--no-browser"]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert cli(["train", "--dataset", "synthetic", "--db", str(tmp_path / "cli.db"), *argv]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "app.db").exists() and not (tmp_path / "cli.db").exists()  # refused before the store


# Every CLI command that runs jobs, as a user would start it (the store is never reached with a bad flag).
JOB_COMMANDS = {
    "train": ["train", "--dataset", "synthetic"],
    "finetune": ["finetune"],
    "resume": ["resume", "1"],
    "train-all": ["train-all", "--preset", "quick"],
    "sweep": ["sweep", "--dataset", "synthetic", "--seeds", "0,1"],
}


@pytest.mark.parametrize("command", JOB_COMMANDS)
@pytest.mark.parametrize(
    "argv, message",
    [
        (["--ray", "local", "--retries", "-1"], r"^error: --retries must be 0 or more, not -1$"),
        (["--ray", "local", "--ray-cpus", "0"], r"^error: --ray-cpus must be more than 0, not 0.0$"),
        (["--ray", "head-node"], r"^error: .*give the head's HOST:PORT"),
        (["--ray", "127.0.0.1:{port}"], r"^error: --ray 127.0.0.1:\d+: nothing answers there"),
        (["--ray-resources", '{"trainer": 1}'], r"^error: --storage and --ray-resources apply to jobs on a Ray"),
    ],
)
def test_every_command_that_runs_jobs_takes_the_ray_flags_and_refuses_them_alike(
    command, argv, message, capsys, tmp_path
):
    """train, finetune, resume, train-all and sweep have the same flags, checked the same way: one line on stderr,
    exit status 2, before the store (or a preset, or TensorFlow) is opened."""
    argv = [a.replace("{port}", str(_unused_port())) for a in argv]
    assert cli([*JOB_COMMANDS[command], "--db", str(tmp_path / "cli.db"), *argv]) == 2
    captured = capsys.readouterr()
    assert re.search(message, captured.err, re.MULTILINE) and captured.err.count("\n") == 1, captured.err
    assert captured.out == "" and not (tmp_path / "cli.db").exists()


def test_a_sweep_dry_run_with_ray_starts_no_ray(capsys, tmp_path, monkeypatch):
    """`sweep --ray local --dry-run` lists the runs and their estimate; neither Ray nor the job queue starts."""
    from workbench.jobs import cluster_flags, ray_cluster

    def refuse(*args, **kwargs):
        raise AssertionError("the dry run started Ray or a job queue")

    monkeypatch.setattr(ray_cluster, "connect", refuse)
    monkeypatch.setattr(cluster_flags, "open_queue", refuse)
    argv = [*JOB_COMMANDS["sweep"], "--epochs", "1", "--model", "lenet", "--db", str(tmp_path / "cli.db")]
    assert cli([*argv, "--ray", "local", "--retries", "2", "--ray-cpus", "2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "= 2 runs" in out and "Ray cluster" not in out
    assert not (tmp_path / "cli.db.lock").exists()  # no job queue took the store's job lock
