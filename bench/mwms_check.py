"""Does Keras 3's `model.fit` train under `tf.distribute.MultiWorkerMirroredStrategy` on the pinned versions?
(keras-team/keras issue 20585: it failed with a PerReplica error; Ray Train's TensorflowTrainer runs the same
strategy, so it stands or falls with it.) Two worker processes on 127.0.0.1, each a `TF_CONFIG` worker, fit a
tiny Dense model for two epochs on random data. Prints what happened; exits 0 when both workers trained.

    .venv/bin/python bench/mwms_check.py
"""

import json
import os
import socket
import subprocess
import sys

WORKER = r"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, tensorflow as tf, keras
strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
y = (x[:, 0] > 0).astype("int64")
ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
history = model.fit(ds, epochs=2, verbose=0)
print("TRAINED", [round(v, 4) for v in history.history["loss"]], flush=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    import keras
    import tensorflow as tf

    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    procs = []
    for index in range(2):
        env = {
            **os.environ,
            "CUDA_VISIBLE_DEVICES": "",
            "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    outputs = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            out = (proc.communicate()[0] or "") + "\n(timed out after 300 s)"
        outputs.append((proc.returncode, out))
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}: MultiWorkerMirroredStrategy, 2 workers on 127.0.0.1"
    )
    ok = True
    for index, (code, out) in enumerate(outputs):
        trained = [line for line in out.splitlines() if line.startswith("TRAINED")]
        ok &= code == 0 and bool(trained)
        tail = "\n    ".join(out.strip().splitlines()[-6:])
        print(f"worker {index}: exit {code}; {trained[0] if trained else 'did not train'}\n    {tail}")
    print("model.fit under MultiWorkerMirroredStrategy:", "works" if ok else "FAILS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
