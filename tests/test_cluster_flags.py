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
