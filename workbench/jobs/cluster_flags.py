"""The flags that send jobs to a Ray cluster, shared by `app.py` and the CLI's `train`, `finetune`, `train-all`,
`resume` and `sweep` (`workbench.cli.job_queue`); and the job queue they make. Without `--ray` (or WORKBENCH_RAY)
nothing of Ray is imported.

    --ray ADDRESS          HOST:PORT of a running cluster's head, or 'local' (a private Ray on this machine)
    --storage FOLDER|URI   checkpoints every node reaches (default: the store's files folder)
    --retries N            resubmissions of a run whose node died (default 1)
    --ray-cpus N           CPUs each job asks for (default 1)
    --ray-resources JSON   custom resources each job asks for, e.g. '{"trainer": 1}'
    --ray-insecure         join a cluster that has no token authentication (refused without it)
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING, Any

from workbench.errors import UserError
from workbench.jobs import ray_cluster

if TYPE_CHECKING:
    from store import Store
    from workbench.jobs.queue import JobQueue


def add_arguments(parser: argparse.ArgumentParser, default: Any = None) -> None:
    """default: argparse.SUPPRESS for subcommands sharing the flags before and after their name."""

    def value(fallback: Any) -> Any:
        return fallback if default is None else default

    group = parser.add_argument_group("Ray cluster (jobs on other machines)")
    group.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=value(os.environ.get("WORKBENCH_RAY") or None),
        help="run jobs on the Ray cluster whose head is HOST:PORT, or 'local' for a private Ray on "
        "this machine (or WORKBENCH_RAY)",
    )
    group.add_argument(
        "--storage",
        metavar="FOLDER_OR_URI",
        default=value(os.environ.get("WORKBENCH_STORAGE") or None),
        help="with --ray: where checkpoints go, a shared folder or a URI pyarrow opens (s3://...); "
        "default the store's files folder (this machine's nodes only)",
    )
    group.add_argument(
        "--retries",
        type=int,
        default=value(1),
        help="with --ray: how often a run whose node died is resumed on another (default 1)",
    )
    group.add_argument("--ray-cpus", type=float, default=value(1.0), help="with --ray: CPUs each job asks for")
    group.add_argument(
        "--ray-resources",
        metavar="JSON",
        default=value(None),
        help="with --ray: custom resources each job asks for, e.g. '{\"trainer\": 1}'",
    )
    group.add_argument(
        "--ray-insecure",
        action="store_true",
        default=value(False),
        help="with --ray HOST:PORT: join a cluster without Ray's token authentication (refused otherwise: "
        "anyone who reaches its ports can run code on its nodes)",
    )


def check(args: argparse.Namespace) -> dict:
    """Refuse flag mistakes before anything heavy is imported; returns the custom resources."""
    ray, storage = getattr(args, "ray", None), getattr(args, "storage", None)
    resources_text = getattr(args, "ray_resources", None)
    if not ray:
        if storage or resources_text or getattr(args, "ray_insecure", False):
            raise UserError(
                "--storage, --ray-resources and --ray-insecure apply to jobs on a Ray cluster: add --ray ADDRESS "
                "(or --ray local)"
            )
        return {}
    if getattr(args, "retries", 1) < 0:
        raise UserError(f"--retries must be 0 or more, not {args.retries}")
    if getattr(args, "ray_cpus", 1.0) <= 0:
        raise UserError(f"--ray-cpus must be more than 0, not {args.ray_cpus}")
    if ray != ray_cluster.LOCAL:  # an unreachable head is answered in seconds, before TensorFlow's import
        ray_cluster.check_reachable(*ray_cluster.split_address(ray))
        ray_cluster.use_token(ray, insecure=bool(getattr(args, "ray_insecure", False)))  # no token: refused now
    if not resources_text:
        return {}
    try:
        resources = json.loads(resources_text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--ray-resources must be JSON such as '{{\"trainer\": 1}}' ({exc.msg})") from None
    if not isinstance(resources, dict) or not all(isinstance(v, (int, float)) and v > 0 for v in resources.values()):
        raise UserError("--ray-resources must map resource names to positive amounts, e.g. '{\"trainer\": 1}'")
    if {"CPU", "GPU"} & set(resources):
        raise UserError("--ray-resources names custom resources; CPUs come from --ray-cpus, GPUs from the run's --gpus")
    return resources


def open_queue(store: Store, args: argparse.Namespace) -> JobQueue:
    """The job queue the flags ask for: this machine's (no --ray), or one whose jobs run on the cluster."""
    from workbench.jobs.queue import JobQueue  # noqa: PLC0415 - TensorFlow: the queue imports it; flags are checked first

    resources = check(args)
    if not getattr(args, "ray", None):
        return JobQueue(store)
    from workbench.jobs.ray_backend import RayBackend  # noqa: PLC0415 - Ray: imported only with --ray

    backend = RayBackend(
        store,
        args.ray,
        storage=args.storage,
        retries=args.retries,
        cpus_per_job=args.ray_cpus,
        resources=resources,
        insecure=bool(getattr(args, "ray_insecure", False)),
    )
    try:
        return JobQueue(store, backend=backend)
    except BaseException:
        backend.close()
        raise
