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
        (["--storage", "/tmp/x"], r"--storage, --ray-resources and --ray-insecure apply to jobs on a Ray cluster"),
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
        (
            ["--ray-resources", '{"trainer": 1}'],
            r"^error: --storage, --ray-resources and --ray-insecure apply to jobs on a Ray",
        ),
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


def test_ray_token_authentication_for_private_and_existing_clusters(monkeypatch, tmp_path):
    """`--ray local` turns Ray's token authentication on with a token of its own (nothing written to ~/.ray); an
    existing cluster is joined with this machine's token, refused without one unless --ray-insecure."""
    import os

    from workbench.errors import UserError
    from workbench.jobs import ray_cluster

    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    ray_cluster.use_token("local")
    assert os.environ["RAY_AUTH_MODE"] == "token" and len(os.environ["RAY_AUTH_TOKEN"]) == 64
    assert not (tmp_path / ".ray").exists()

    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.delenv("RAY_AUTH_MODE")
    with pytest.raises(UserError, match=r"--ray 10.0.0.5:6379: a cluster is joined with its authentication token"):
        ray_cluster.use_token("10.0.0.5:6379")
    assert "RAY_AUTH_MODE" not in os.environ
    ray_cluster.use_token("10.0.0.5:6379", insecure=True)  # the user's word: nothing is turned on
    assert "RAY_AUTH_MODE" not in os.environ
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("a" * 64)  # as `ray get-auth-token --generate` leaves it
    ray_cluster.use_token("10.0.0.5:6379")
    assert os.environ["RAY_AUTH_MODE"] == "token"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with pytest.raises(UserError, match=r"RAY_AUTH_MODE=disabled turns it off"):
        ray_cluster.use_token("10.0.0.5:6379")
    ray_cluster.use_token("local")  # a private cluster always has it
    assert os.environ["RAY_AUTH_MODE"] == "token" and "RAY_AUTH_TOKEN" not in os.environ  # ~/.ray's token used
