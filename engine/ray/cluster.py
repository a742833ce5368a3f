"""Connecting to Ray: a local instance, or a cluster's address, checked first so a wrong one fails in seconds."""
from __future__ import annotations

import logging
import socket
from types import ModuleType

from ..errors import ClusterError
from ..extras import require

CONNECT_TIMEOUT_S = 10.0  # a TCP connect to the cluster's address; ray.init itself retries for a minute or more
NO_PROGRESS_S = 900  # Ray Data fails a job when no operator produced or consumed a block for this long
MAX_UNIT_RETRIES = 3  # a unit whose actor died or raised is retried this often before the job fails

FIX = ("start a cluster with `ray start --head` and pass the address it prints (host:port, or auto on one of its "
       "nodes), or pass --ray alone for a local Ray instance")


def import_ray(feature: str) -> ModuleType:
    """ray, with Ray Data, or MissingExtraError naming pip install 'embedding-engine[ray]'."""
    require("ray.data", "ray", feature)
    return require("ray", "ray", feature)


def connect(address: str, quiet: bool) -> bool:
    """ray.init for address ('local': start a local instance); True when this call started Ray, so the caller shuts
    it down. A caller already connected (ray.init done in its own program) is reused as is."""
    ray = import_ray("engine embed --ray")
    if ray.is_initialized():
        return False
    logs = {"logging_level": logging.WARNING, "log_to_driver": not quiet}
    if address == "local":
        ray.init(include_dashboard=False, **logs)
        return True
    if address != "auto":
        check_reachable(address)
    try:
        ray.init(address=address, **logs)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ClusterError(f"cannot connect to the Ray cluster at {address!r} ({type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else ''}); {FIX}") from None
    return True


def check_reachable(address: str) -> None:
    """Refuse an address whose host:port does not accept a TCP connection within CONNECT_TIMEOUT_S."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ClusterError(f"--ray {address!r} is not an address (host:port, ray://host:port or auto); {FIX}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise ClusterError(f"cannot reach the Ray cluster at {address!r} ({type(err).__name__}: {err}); {FIX}") from None


def configure_data(ray: ModuleType, quiet: bool) -> None:
    """Ray Data settings every engine job needs (found in a trial on Ray 2.60): retry a unit whose actor raised
    (by default one exception fails the job), fail a stalled job instead of hanging, raise the original error."""
    ctx = ray.data.DataContext.get_current()
    ctx.actor_task_retry_on_errors = True
    ctx.execution_no_progress_timeout_s = NO_PROGRESS_S
    ctx.raise_original_map_exception = True
    ctx.enable_progress_bars = False  # the engine draws its own
    ctx.print_on_execution_start = not quiet
