"""The job queue of the CLI's commands that run jobs (`train`, `finetune`, `resume`, `train-all`, `sweep`,
`crossval`, `search`), from their Ray flags (`workbench.jobs.cluster_flags`: --ray, --storage, --retries,
--ray-cpus, --ray-resources):

    add_queue_arguments(parser)                  # the flags, on each such command
    check_queue_flags(args)                      # main() refuses their mistakes before the store is opened
    with open_job_queue(args, store) as queue:   # this machine's queue or the cluster's, said where; shut down
        run_id = queue.submit(spec)              # at the end of the block, however it ends

A command that queues several tagged runs at once (`sweep`, `crossval`) lists them, says how long they take,
stops there with --dry-run, else queues and follows them: `list_then_queue`.
"""

import sys
from collections.abc import Callable, Sequence
from contextlib import contextmanager

from workbench.jobs import cluster_flags
from workbench.jobs.estimate_many import estimate_many


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


def gpu_count() -> int:
    """The GPUs this machine's TensorFlow sees (what a spec is validated against before queueing)."""
    from workbench.training.devices import gpu_names  # noqa: PLC0415 - TensorFlow: it counts the GPUs

    return len(gpu_names())


def list_then_queue(args, store, specs: Sequence, gpus: int, *, tag: str, submit: Callable, follow: Callable):
    """The runs `specs` one a line and the time they take here; then, unless --dry-run (None: nothing queued),
    `submit(queue)` (their run ids) on the flags' job queue, and `follow(queue, store, run_ids)`'s exit status.
    `store` is None only for a dry run without a store file."""
    from workbench.views.sweeps import time_text  # noqa: PLC0415 - SciPy: views.sweeps imports it; --help needs none

    for spec in specs:
        print(f"  {spec.name}")
    print(time_text(estimate_many(list(specs), store, gpus)))
    if args.dry_run:
        print("dry run: nothing queued")
        return None
    with open_job_queue(args, store) as queue:
        run_ids = submit(queue)
        print(f"queued runs {run_ids[0]}-{run_ids[-1]} tagged {tag}  ({store.path})", flush=True)
        return follow(queue, store, run_ids)
