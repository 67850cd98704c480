"""Work-arounds for TensorFlow bugs the workbench runs into; each says which bug and when it can go."""

import logging

log = logging.getLogger(__name__)

_CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


def release_custom_gradients() -> int:
    """Drop the gradient functions `tf.custom_gradient` registered while graphs were traced; returns
    how many were dropped. Call it only while no graph is being traced (no job running).

    TensorFlow bug tensorflow/tensorflow#97697 (fix merged as PR #109334, not in TF 2.21): in graph
    mode, `@tf.custom_gradient` registers its gradient under a fresh name 'CustomGradient-N' in
    TensorFlow's global gradient registry, which is never emptied, and that closure holds tensors of the
    traced graph. Keras' train step goes through one on every fit (its gradients' `all_reduce`, under
    any distribution strategy), so every finished run kept its whole train-step graph and the variables
    it captured: about 10 MB per tiny run in `bench/soak.py`, for the life of the app. An entry is only
    looked up when its graph is differentiated, which happens while that graph is traced, so dropping
    them between jobs is safe (the same fix keras-team/tf-keras PR #898 puts in `clear_session`).
    Remove this once the pinned TensorFlow has the fix: `tests/test_reliability.py` checks the leak.
    """
    try:
        from tensorflow.python.framework import ops  # noqa: PLC0415 - TensorFlow, private: no public API

        registry = ops._gradient_registry._registry
    except (ImportError, AttributeError):  # a TensorFlow that moved it: nothing to release here
        log.warning("TensorFlow's gradient registry was not found; custom gradients are not released")
        return 0
    stale = [name for name in list(registry) if name.startswith(_CUSTOM_GRADIENT_PREFIX)]
    for name in stale:
        registry.pop(name, None)
    return len(stale)
