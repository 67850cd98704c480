"""Ray's token authentication on the loopback two-node cluster (tests/cluster_fixtures.py, started with
RAY_AUTH_MODE=token): a driver without the token, or with another one, is refused by the cluster; the CLI
refuses to try without a token unless --ray-insecure."""

import os
import subprocess
import sys

import pytest
from conftest import ROOT

TOKEN_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
TRAIN = ["train", "--model", "lenet", "--epochs", "1", "--dataset", "synthetic"]
TRAIN += ["--dataset-options", "n_train=600,n_test=100"]


def _env(home, **extra) -> dict:
    """This process's environment without any Ray token, HOME an empty folder (no ~/.ray/auth_token)."""
    env = {k: v for k, v in os.environ.items() if k not in TOKEN_VARIABLES}
    return {**env, "HOME": str(home), **extra}


DRIVER = (
    "import sys, ray\n"
    "try:\n"
    "    ray.init(address=sys.argv[1], _node_ip_address='127.0.0.1', log_to_driver=False)\n"
    "    print('joined', ray.cluster_resources())\n"
    "except Exception as exc:\n"
    "    print('refused:', type(exc).__name__, str(exc).splitlines()[0] if str(exc) else '')\n"
    "    sys.exit(3)\n"
)


def _driver(address, env):
    return subprocess.run(
        [sys.executable, "-c", DRIVER, address], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env
    )


def test_a_driver_without_the_token_or_with_another_is_refused(ray_cluster, tmp_path):
    tokenless = _driver(ray_cluster.address, _env(tmp_path))
    assert tokenless.returncode == 3, (tokenless.stdout, tokenless.stderr[-2000:])
    assert "refused:" in tokenless.stdout and "joined" not in tokenless.stdout
    # The head's GCS says why (Ray 2.60's words, in the driver's log on stderr).
    assert "Authentication token is missing or incorrect" in tokenless.stderr, tokenless.stderr[-2000:]
    wrong = _driver(ray_cluster.address, _env(tmp_path, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="0" * 64))
    assert wrong.returncode == 3, (wrong.stdout, wrong.stderr[-2000:])
    assert "Authentication token is missing or incorrect" in wrong.stderr, wrong.stderr[-2000:]
    right = _driver(ray_cluster.address, _env(tmp_path, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=ray_cluster.token))
    assert right.returncode == 0 and "joined" in right.stdout, (right.stdout, right.stderr[-2000:])


@pytest.mark.slow  # ~28 s (two CLI processes); the token refusal by default: test_a_driver_without_the_token_...
def test_the_cli_refuses_a_cluster_without_a_token_unless_told_it_is_insecure(ray_cluster, tmp_path):
    argv = [sys.executable, "-m", "workbench", "--db", str(tmp_path / "w.db"), *TRAIN, "--ray", ray_cluster.address]
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT, env=_env(tmp_path))
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "a cluster is joined with its authentication token, and this machine has no Ray token" in refused.stderr
    assert "ray get-auth-token" in refused.stderr and "--ray-insecure" in refused.stderr
    assert not (tmp_path / "w.db").exists()  # refused before the store was opened
    # Told it is insecure, the CLI tries, and the cluster itself refuses the tokenless driver.
    tried = subprocess.run(
        [*argv, "--ray-insecure"], capture_output=True, text=True, timeout=300, cwd=ROOT, env=_env(tmp_path)
    )
    assert tried.returncode == 2, tried.stderr[-2000:]
    assert "could not join the Ray cluster" in tried.stderr, tried.stderr[-2000:]
