"""TensorFlow's CPU thread pools sized to the cores a job really has (`workbench.specs.hardware.job_cores`).

TensorFlow sizes its pools from the machine, not from a CPU quota, and a pool larger than the job's cores
only makes its threads wait on each other: on the shared 2-core machine a fast-recipe run beside other work
spent a third of its CPU seconds in the kernel (issue 25). So a job's process sets, before TensorFlow runs
anything:

    intra-op threads = the job's cores      (one op's work, oneDNN's convolutions among them)
    inter-op threads = the job's cores      (independent ops; tf.data's parallel map also runs here)
    OMP_NUM_THREADS  = the job's cores      (any OpenMP library loaded beside TensorFlow)

TensorFlow 2's eager API has no switch for its thread pools' spinning (the ConfigProto's
`disable_thread_spinning` is a session option only); pools no larger than the cores keep the spinning
threads from taking cores that other threads of the same job wait for.
"""

from __future__ import annotations

import logging
import os

from workbench.specs.hardware import job_cores

log = logging.getLogger(__name__)


def set_thread_environment(cores: int | None = None) -> int:
    """OMP_NUM_THREADS for libraries read at their import (before TensorFlow's); a value set by the user stays."""
    cores = cores or job_cores()
    os.environ.setdefault("OMP_NUM_THREADS", str(cores))
    return cores


def configure_threads(cores: int | None = None) -> int:
    """Size TensorFlow's intra- and inter-op pools to `cores` (default: the job's); returns the count used.
    Only possible before TensorFlow has run an op in this process: later it logs and leaves them."""
    import tensorflow as tf  # noqa: PLC0415 - TensorFlow: after set_thread_environment, which must come first

    cores = set_thread_environment(cores)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(cores)
        tf.config.threading.set_inter_op_parallelism_threads(cores)
    except RuntimeError as exc:  # the runtime already started: its pools stay as they are
        log.info("thread pools not resized (%s)", exc)
    return cores
