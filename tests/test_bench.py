"""The benchmarks still run (tiny sizes): a benchmark that rots unnoticed gives the README stale figures."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT


SLOW = pytest.mark.slow  # tens of seconds each: `make test ARGS="-m slow"` runs them


@pytest.mark.parametrize("script, args, expect", [
    pytest.param("train_overhead.py", ["--images", "256", "--epochs", "2", "--batch-size", "64"], "ratio", marks=SLOW),
    pytest.param("ui.py", ["--runs", "4", "--calls", "3"], "worst p95 while training", marks=SLOW),
    pytest.param("soak.py", ["--seconds", "20"], "lost or inconsistent runs: 0", marks=SLOW),
    ("errors.py", ["--images", "500", "--calls", "3", "--data", "synthetic"], "worst p95"),
    ("ensemble.py", ["--members", "3", "--images", "300"], "slider update"),
])
def test_benchmark_runs_small(script, args, expect):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True,
                            timeout=300, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert expect in result.stdout
