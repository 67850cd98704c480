"""What running jobs on a Ray cluster costs against the app's own child processes, for tiny runs, side by side in
one run (every Ray process on 127.0.0.1, no dashboard):

1. local: `JobQueue(store)`, each job a child process of this one (CPU jobs one at a time);
2. Ray, one node with one CPU (jobs one at a time too): the per-job overhead of the Ray path (an actor per job,
   its worker process, the result stream, checkpoints copied to storage) is (2) - (1) per job;
3. Ray, two nodes with one CPU each: the same jobs two at a time; the ratio of (2) to (3).

The delay from an epoch's end (the job sends its row) to the row in the store is measured on every epoch of
(2) and (3). Targets: overhead <= 3 s a job, every epoch row in the store within 1 s. Exits 1 when one is missed.

    .venv/bin/python bench/cluster.py [--jobs 4] [--epochs 2] [--images 600]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # keep 127.0.0.1 as given (workbench.jobs.ray_cluster)
# Token authentication, as the README starts a cluster (before Ray is imported: its nodes inherit the token).
os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.urandom(32).hex()})
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.targets import Targets
from store import Store
from workbench.jobs.queue import JobQueue
from workbench.specs.run import RunSpec

TARGET_OVERHEAD = 3.0
TARGET_DELAY = 1.0
LOOPBACK = "127.0.0.1"


def specs(jobs: int, epochs: int, images: int) -> list:
    return [
        RunSpec.from_dict(
            dict(
                model="resnet20",
                model_kwargs={"depth": 8, "base_width": 4},
                dataset="synthetic",
                dataset_options={"n_train": images, "n_test": 100},
                batch_size=50,
                epochs=epochs,
                learning_rate=0.05,
                schedule="cosine",
                seed=i,
                name=f"bench-{i}",
            )
        )
        for i in range(jobs)
    ]


def run_all(queue, store, jobs: list) -> float:
    """Queue every job at once and wait for all; wall seconds. Every run must complete."""
    started = time.perf_counter()
    ids = [queue.submit(spec) for spec in jobs]
    for run_id in ids:
        assert queue.wait(run_id, timeout=900), f"run {run_id} did not end"
    seconds = time.perf_counter() - started
    failed = [
        (r, store.get_run(r)["status"], store.get_run(r)["error"])
        for r in ids
        if store.get_run(r)["status"] != "completed"
    ]
    assert not failed, failed
    return seconds


def ray_side(folder: Path, address: str, jobs: list) -> tuple:
    from workbench.jobs.ray_backend import RayBackend

    with Store(folder / "workbench.db") as store:
        backend = RayBackend(store, address)
        queue = JobQueue(store, backend=backend)
        try:
            seconds = run_all(queue, store, jobs)
            nodes = {store.get_run(r["id"])["node"] for r in store.list_runs()}
            return seconds, list(backend.stream.epoch_delays), nodes
        finally:
            queue.shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--images", type=int, default=600, help="synthetic training images per run")
    args = parser.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    jobs = specs(args.jobs, args.epochs, args.images)
    load = os.getloadavg()
    print(
        f"{args.jobs} tiny runs (resnet depth 8, width 4, {args.images} synthetic images, {args.epochs} epochs); "
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} at the start"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "local").mkdir()
        with Store(tmp / "local" / "workbench.db") as store:
            queue = JobQueue(store, devices=[])
            try:
                local = run_all(queue, store, jobs)
            finally:
                queue.shutdown()
        node = dict(
            node_ip_address=LOOPBACK,
            num_cpus=1,
            num_gpus=0,
            object_store_memory=200 * 1024 * 1024,
            dashboard_host=LOOPBACK,
        )
        cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
        try:
            ray.init(address=cluster.address, _node_ip_address=LOOPBACK, log_to_driver=False, configure_logging=False)
            one, delays_one, _ = ray_side(tmp / "one", cluster.address, jobs)
            cluster.add_node(**node)
            cluster.wait_for_nodes()
            two, delays_two, nodes = ray_side(tmp / "two", cluster.address, jobs)
        finally:
            ray.shutdown()
            cluster.shutdown()
    delays = sorted(delays_one + delays_two)
    overhead = (one - local) / len(jobs)
    print("| path | wall s | s per job |")
    print("|---|---|---|")
    for name, seconds in (
        ("local child processes", local),
        ("Ray, one node (1 CPU)", one),
        (f"Ray, two nodes (1 CPU each; runs on {len(nodes)} nodes)", two),
    ):
        print(f"| {name} | {seconds:.1f} | {seconds / len(jobs):.1f} |")
    print(
        f"epoch row delay over {len(delays)} epochs: median {delays[len(delays) // 2] * 1000:.0f} ms, "
        f"max {delays[-1] * 1000:.0f} ms"
    )
    print(f"two nodes vs one: {one / two:.2f}x; load average {os.getloadavg()[0]:.2f} at the end")
    targets = Targets()
    targets.below("Ray overhead per job over the local child process", overhead, TARGET_OVERHEAD, unit=" s")
    targets.below("slowest epoch row from the job to the store", delays[-1], TARGET_DELAY, unit=" s")
    return targets.exit_code()


if __name__ == "__main__":
    sys.exit(main())
