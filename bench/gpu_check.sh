#!/usr/bin/env bash
# GPU checks in one short script (under 10 minutes on one H100): the devices, the airbench94 speed-run to 94%
# test accuracy first, then wrn_28_10 training images/s in float32 and mixed precision, with and without XLA,
# per GPU count where there are several.
#   bash bench/gpu_check.sh            (installs .venv with GPU=1 if it is missing)
# On the lent device machine the CUDA wheels come from .whl; see the README's "GPU" section.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if [ ! -x "$PY" ]; then make install GPU=1 >/dev/null; fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "nvidia-smi not found"
"$PY" - <<'PYEOF'
import tensorflow as tf
print("TensorFlow", tf.__version__, "built with CUDA:", tf.test.is_built_with_cuda())
print("GPUs:", tf.config.list_physical_devices("GPU"))
PYEOF
# First, the speed-run: airbench94 (presets/speedrun.toml: mixed precision, XLA, batch 1024, and the rest of
# cifar10-airbench's recipe: Dirac init, 64x BatchNorm-bias rate, whitening bias, lookahead), seconds from the
# start of training to 94% test accuracy (target: at most 15 s on one H100-class GPU). DATA names the CIFAR-10
# copy. Its exit status is kept, so the throughput table below still runs when it misses.
status=0
timeout 150 "$PY" bench/fast_recipe.py --preset speedrun --skip-ensemble --data "${DATA:-../shared/data/cifar10-jpeg.tar.gz}" || status=$?
timeout 420 "$PY" bench/gpu_throughput.py --model "${MODEL:-wrn_28_10}" --steps "${STEPS:-30}" \
    --precisions float32,mixed_float16,mixed_bfloat16 --xla off,on
exit "$status"
