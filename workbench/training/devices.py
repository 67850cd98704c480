"""The devices TensorFlow sees, and the distribution strategy for a job's share of them."""

import threading
from collections.abc import Sequence

import tensorflow as tf

_configured = threading.Lock()
_done = False


def configure() -> None:
    """Turn on GPU memory growth once, before any GPU is used, so side-by-side jobs share cards."""
    global _done
    with _configured:
        if _done:
            return
        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:
                pass  # already initialised by someone else; growth cannot change now
        _done = True


def cuda_visible_ids(value: str | None) -> list[str]:
    """The physical GPU ids a CUDA_VISIBLE_DEVICES value lists, in order ([] when unset or empty):
    a process's GPU i is physical GPU ids[i]."""
    return [v.strip() for v in value.split(",")] if value else []


def gpu_names() -> list[str]:
    """Logical GPU device names, e.g. ['/device:GPU:0', '/device:GPU:1']."""
    configure()
    return [d.name for d in tf.config.list_logical_devices("GPU")]


def describe() -> str:
    """One line for the UI and the runs table: which devices this process can train on."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        cpus = tf.config.list_logical_devices("CPU")
        return f"CPU only ({len(cpus)} logical CPU device{'s' if len(cpus) != 1 else ''})"
    names = []
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", gpu.name))
    return f"{len(gpus)} GPU(s): " + ", ".join(names)


def strategy_for(devices: Sequence[str]) -> tf.distribute.Strategy:
    """MirroredStrategy over several devices (global batch split across replicas), else one device."""
    if len(devices) > 1:
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.OneDeviceStrategy(devices[0] if devices else "/cpu:0")
