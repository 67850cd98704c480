"""The job queue of the CLI's commands that run jobs (`train`, `finetune`, `resume`, `train-all`, `sweep`), from
their Ray flags (`workbench.jobs.cluster_flags`: --ray, --storage, --retries, --ray-cpus, --ray-resources):

    add_queue_arguments(parser)                  # the flags, on each such command
    check_queue_flags(args)                      # main() refuses their mistakes before the store is opened
    with open_job_queue(args, store) as queue:   # this machine's queue or the cluster's, said where; shut down
        run_id = queue.submit(spec)              # at the end of the block, however it ends
"""

import sys
from contextlib import contextmanager

from workbench.jobs import cluster_flags


def add_queue_arguments(parser) -> None:
    """The Ray flags on a command that runs jobs."""
    cluster_flags.add_arguments(parser)


def check_queue_flags(args) -> None:
    """Refuse mistakes in the Ray flags (a bad number, JSON, or a head nobody answers at) before anything heavy
    or the store is touched; nothing for a command without them."""
    if hasattr(args, "ray"):
        cluster_flags.check(args)


def _say(text: str) -> None:
    print(text, flush=True)


@contextmanager
def open_job_queue(args, store, out=_say):
    """The job queue the flags ask for on `store`: this machine's, or one whose jobs run on the Ray cluster
    (--ray), which `out` then names (`Ray cluster: 2 nodes, 4 GPUs, 32 CPUs`). The queue is shut down when the
    block ends: jobs still queued or running are cancelled (resumable), Ray is let go, the store's job lock
    released."""
    queue = cluster_flags.open_queue(store, args)
    try:
        describe = getattr(queue.backend, "describe", None)  # the Ray backend's: nodes, GPUs, CPUs
        if describe is not None:
            out(describe())
        yield queue
    except BaseException:
        queue.shutdown()
        raise
    else:
        # The runs have ended and their statuses are in the store: the command's exit status is theirs. A failure
        # while letting the queue (and Ray) go afterwards is said, not turned into a traceback and status 1.
        try:
            queue.shutdown()  # idempotent: a Ctrl-C path that already did it changes nothing
        except Exception as exc:
            print(f"warning: shutting the job queue down failed ({type(exc).__name__}: {exc})", file=sys.stderr)
