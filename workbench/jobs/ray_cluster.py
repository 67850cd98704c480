"""The app's connection to a Ray cluster: joining one (`--ray HOST:PORT`) or starting a private one on this
machine (`--ray local`), what the cluster has (nodes, GPUs, CPUs), and whether a job's resources fit a node.

Ray is imported here and in the modules that only `--ray` loads (`ray_backend`, `remote_job`,
`result_stream`), never by the default path: its import costs about a second and starts nothing we need.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import UserError

LOCAL = "local"
LOOPBACK = "127.0.0.1"
NAMESPACE = "workbench"
CONNECT_TIMEOUT = 3.0  # seconds to reach the head's port before saying it is unreachable
SINGLE_MACHINE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray keeps 127.0.0.1 as given (ray_constants)
# Ray's token authentication (Ray 2.60: `ray.init()` of a new local cluster turns it on by default, `ray start`
# only where a token exists; docs.ray.io ray-security/token-auth): the mode, and where Ray looks for the token,
# in its order: the variable, the file it names, ~/.ray/auth_token.
AUTH_MODE, AUTH_TOKEN, AUTH_TOKEN_PATH = "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"
TOKEN = "token"


@dataclass(frozen=True)
class Node:
    node_id: str
    address: str
    cpus: float
    gpus: float
    resources: dict  # everything Ray counts on it: CPU, GPU, memory, custom resources

    @property
    def label(self) -> str:
        """As the jobs and runs tables show a node (`workbench.jobs.remote_job.node_label`)."""
        return f"{self.address} {self.node_id[:8]}"


def split_address(address: str) -> tuple:
    """(host, port) of `HOST:PORT`, refused with what to type otherwise."""
    text = address.strip()
    if text.startswith("ray://"):
        raise UserError(
            f"--ray {address}: Ray Client addresses (ray://) are not supported; give the head's "
            "HOST:PORT as `ray start --head` printed it (e.g. 10.0.0.5:6379), or 'local'"
        )
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(
            f"--ray {address}: give the head's HOST:PORT as `ray start --head` printed it "
            "(e.g. 10.0.0.5:6379), or 'local' for a private Ray on this machine"
        )
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_reachable(host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> None:
    """A refused or silent port is answered in seconds, before Ray's own minute-long connect retries."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        raise UserError(
            f"--ray {host}:{port}: nothing answers there ({exc.strerror or exc}). Start the cluster "
            f"first (`ray start --head --node-ip-address {host} --port {port}` on that machine) or "
            "use --ray local for a private Ray on this one"
        ) from None


def default_token_path() -> Path:
    return Path.home() / ".ray" / "auth_token"


def token_source() -> str | None:
    """Where Ray would find this machine's token (None: nowhere), in Ray's order."""
    if os.environ.get(AUTH_TOKEN, "").strip():
        return AUTH_TOKEN
    named = os.environ.get(AUTH_TOKEN_PATH)
    if named and Path(named).expanduser().is_file() and Path(named).expanduser().read_text().strip():
        return f"{AUTH_TOKEN_PATH} ({named})"
    if default_token_path().is_file() and default_token_path().read_text().strip():
        return str(default_token_path())
    return None


def use_token(address: str, insecure: bool = False) -> None:
    """Token authentication for the cluster at `address`, before Ray is imported: a private cluster ('local')
    gets RAY_AUTH_MODE=token and, when this machine has no token, one made for this process alone (in its
    environment, which Ray's processes inherit; nothing is written to ~/.ray). An existing cluster is joined
    with this machine's token; without one it is refused unless `insecure` (a cluster started without token
    authentication, which anyone who reaches its ports may use)."""
    if address == LOCAL:
        os.environ[AUTH_MODE] = TOKEN
        if token_source() is None:
            os.environ[AUTH_TOKEN] = secrets.token_hex(32)  # 256 bits, as `ray get-auth-token --generate`
        return
    if insecure:
        return
    source = token_source()
    if source is None or os.environ.get(AUTH_MODE, TOKEN).lower() != TOKEN:
        why = (
            f"{AUTH_MODE}={os.environ[AUTH_MODE]} turns it off"
            if source is not None
            else f"this machine has no Ray token (none in {AUTH_TOKEN}, {AUTH_TOKEN_PATH} or {default_token_path()})"
        )
        raise UserError(
            f"--ray {address}: a cluster is joined with its authentication token, and {why}. Copy the head's "
            f"token (`ray get-auth-token` on the head) into {default_token_path()} or {AUTH_TOKEN} and unset "
            f"{AUTH_MODE}; or, for a cluster started without token authentication on a network only you can reach, "
            "add --ray-insecure (anyone who reaches its ports can run code on every node)"
        )
    os.environ[AUTH_MODE] = TOKEN


def connect(address: str, insecure: bool = False) -> bool:
    """Connect this process to the cluster at `address` (or start a private one: 'local'), with Ray's token
    authentication (`use_token`; `insecure`: join a cluster without it); returns whether this process started
    Ray (and so shuts it down at the end). Already connected (a test's cluster): kept."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray would report usage to its makers otherwise
    if "ray" not in sys.modules or not sys.modules["ray"].is_initialized():  # joined already: that was the token's
        use_token(address, insecure)
    if address == LOCAL or is_loopback(split_address(address)[0]):
        # Ray turns 127.0.0.1 into this machine's outward address (the route to the internet) unless told that
        # this is no multi-machine cluster: a loopback cluster must stay on loopback. Read when Ray is imported.
        os.environ.setdefault(SINGLE_MACHINE, "0")
    import ray  # noqa: PLC0415 - Ray: only --ray imports it (a second at import)

    if ray.is_initialized():
        return False
    if address == LOCAL:
        # A private single-node Ray for one big box: every port on loopback, no dashboard, nobody can join.
        ray.init(
            _node_ip_address=LOOPBACK,
            include_dashboard=False,
            namespace=NAMESPACE,
            log_to_driver=False,
            configure_logging=False,
        )
        return True
    host, port = split_address(address)
    check_reachable(host, port)
    try:
        ray.init(
            address=f"{host}:{port}",
            _node_ip_address=LOOPBACK if is_loopback(host) else None,
            namespace=NAMESPACE,
            log_to_driver=False,
            configure_logging=False,
        )
    except Exception as exc:  # ConnectionError, version mismatch, ...: Ray's own words, and what to check
        raise UserError(
            f"--ray {address}: could not join the Ray cluster ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); check the address `ray start --head` "
            f"printed, that this machine has the cluster's token (`ray get-auth-token` on the head; a cluster with "
            f"token authentication refuses drivers without it) and runs Ray {ray.__version__} and the same Python"
        ) from None
    return False


def nodes() -> list:
    """The cluster's live nodes, head first as Ray lists them."""
    import ray  # noqa: PLC0415 - Ray: only --ray imports it (a second at import)

    found = []
    for info in ray.nodes():
        if not info.get("Alive"):
            continue
        resources = dict(info.get("Resources") or {})
        found.append(
            Node(
                info["NodeID"],
                info.get("NodeManagerAddress", "?"),
                float(resources.get("CPU", 0)),
                float(resources.get("GPU", 0)),
                resources,
            )
        )
    return found


def alive(node_id: str) -> bool:
    return any(n.node_id == node_id for n in nodes())


def describe(found: list) -> str:
    """One line for the page's header and the CLI: `Ray cluster: 2 nodes, 0 GPUs, 4 CPUs`."""
    gpus, cpus = sum(n.gpus for n in found), sum(n.cpus for n in found)
    return (
        f"Ray cluster: {len(found)} node{'s' if len(found) != 1 else ''}, {gpus:g} GPU{'s' if gpus != 1 else ''}"
        f", {cpus:g} CPU{'s' if cpus != 1 else ''}"
    )


def node_summary(node: Node) -> str:
    custom = [
        f"{k} {v:g}"
        for k, v in sorted(node.resources.items())
        if k not in ("CPU", "GPU", "memory", "object_store_memory")
        and not k.startswith("node:")
        and not k.startswith("accelerator_type")
    ]
    return f"{node.address} ({node.gpus:g} GPU, {node.cpus:g} CPU{', ' + ', '.join(custom) if custom else ''})"


def check_fits(request: dict, found: list) -> None:
    """Refuse a job no live node could ever hold (Ray would keep it pending forever), saying what there is.
    request: Ray resource names -> amounts, e.g. {"GPU": 8, "CPU": 1}."""
    wanted = {k: v for k, v in request.items() if v}
    if any(all(node.resources.get(k, 0) >= v for k, v in wanted.items()) for node in found):
        return
    asked = ", ".join(f"{v:g} {k}" for k, v in wanted.items())
    biggest = max(found, key=lambda n: (n.gpus, n.cpus), default=None)
    have = "; ".join(node_summary(n) for n in found) or "no live node"
    hint = ""
    if biggest is not None and request.get("GPU", 0) > biggest.gpus:
        hint = (
            f" The biggest node has {biggest.gpus:g} GPU(s): ask for at most that many (one run spans the GPUs of "
            "one node; many runs spread over the cluster), or add a bigger node."
        )
    raise UserError(f"the run asks for {asked} on one node, and no node of the cluster has that ({have}).{hint}")
