"""A two-node Ray cluster inside the test process, on loopback only, started once per test session.

Both nodes are this machine (Ray's `cluster_utils.Cluster`: a head and a worker node, each its own raylet and
object store), bound to 127.0.0.1, without the dashboard. Each has one CPU and a custom resource naming it
(`wb_head`, `wb_worker`), so a test can hold one node's CPU with a placement group and a job must go to the
other. tests/conftest.py registers the fixture for every test module (one definition: one cluster a session).
"""

import os
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

# Before Ray is imported: otherwise Ray replaces 127.0.0.1 in the addresses it is given by this machine's
# outward address, and the driver would try to reach the cluster through the other interface.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no usage report leaves the machine
LOOPBACK = "127.0.0.1"
NODE_CPUS = 1
OBJECT_STORE = 200 * 1024 * 1024


def _node_args(resource: str) -> dict:
    return dict(
        node_ip_address=LOOPBACK,
        num_cpus=NODE_CPUS,
        num_gpus=0,
        resources={resource: 1},
        object_store_memory=OBJECT_STORE,
        dashboard_host=LOOPBACK,
    )


@dataclass
class TwoNodes:
    cluster: object  # ray.cluster_utils.Cluster
    worker: object  # its worker node (ray._private.node.Node): tests may remove it
    token: str  # its Ray authentication token (RAY_AUTH_TOKEN of this process, which its nodes inherited)

    @property
    def address(self) -> str:
        return self.cluster.address

    def nodes(self) -> list:
        import ray

        return [n for n in ray.nodes() if n["Alive"]]

    def listening(self) -> set:
        """The addresses Ray's processes listen on (raylets, the GCS, workers, agents), from `ss`."""
        found = set()
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            fields = line.split()
            address = fields[3].rsplit(":", 1)[0].strip("[]").removeprefix("::ffff:")
            for pid in re.findall(r"pid=(\d+)", line):
                try:
                    command = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"ray" in command or b"gcs_server" in command:
                    found.add(address)
        return found

    def node_id(self, resource: str) -> str:
        return next(n["NodeID"] for n in self.nodes() if resource in n["Resources"])

    def replace_worker(self) -> None:
        """A new worker node in place of one a test removed (its processes killed, as a machine that died)."""
        self.worker = self.cluster.add_node(**_node_args("wb_worker"))
        self.cluster.wait_for_nodes()

    def hold(self, resource: str):
        """A placement group holding the CPU of the node with `resource` (no process: only the reservation);
        `ray.util.remove_placement_group` frees it."""
        import ray
        from ray.util import placement_group

        group = placement_group([{"CPU": NODE_CPUS, resource: 1}])
        ray.get(group.ready(), timeout=60)
        return group


@pytest.fixture(scope="session")
def ray_cluster():
    pytest.importorskip("ray", reason="ray is not installed (requirements.txt pins it)")
    import ray
    from ray._raylet import Config
    from ray.cluster_utils import Cluster

    # Token authentication, as the README starts a cluster: every node and this driver have the token (the nodes
    # inherit this process's environment); drivers without it are refused (test_cluster_auth.py). One token per
    # process: Ray's token loader caches the first it reads, so a cluster started again must have the same.
    token = os.environ.get("RAY_AUTH_TOKEN") or secrets.token_hex(32)
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token})
    Config.initialize("")  # Ray may be imported already: it reads the mode again (as its own ray.init does)
    # A node that stops answering is declared dead after ~3 s instead of Ray's default ~30 s (the node test).
    health = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 1000, "health_check_failure_threshold": 3}
    cluster = Cluster(
        initialize_head=True,
        head_node_args={**_node_args("wb_head"), "include_dashboard": False, "_system_config": health},
    )
    try:
        # The test process joins before the worker node exists: both nodes have the same address, and a driver
        # joins a node of its own address, so it must be the head's (the node test removes the worker).
        ray.init(
            address=cluster.address,
            _node_ip_address=LOOPBACK,
            namespace="workbench",
            log_to_driver=False,
            configure_logging=False,
        )
        worker = cluster.add_node(**_node_args("wb_worker"))
        cluster.wait_for_nodes()
        nodes = TwoNodes(cluster, worker, token)
        yield nodes
    finally:
        ray.shutdown()
        cluster.shutdown()
