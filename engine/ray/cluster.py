"""Connecting to Ray: a local instance, or a cluster's address, checked first so a wrong one fails in seconds; and
whether the cluster can hold the actors asked for."""
from __future__ import annotations

import logging
import math
import os
from types import ModuleType

from ..errors import ClusterError, ConfigError
from ..extras import require
from .address import FIX, check_speaks_ray, parse_address

NO_PROGRESS_S = 900  # Ray Data fails a job when no operator produced or consumed a block for this long
MAX_UNIT_RETRIES = 3  # a unit whose actor died or raised is retried this often before the job fails


def import_ray(feature: str) -> ModuleType:
    """ray, with Ray Data, or MissingExtraError naming pip install 'embedding-engine[ray]'."""
    require("ray.data", "ray", feature)
    return require("ray", "ray", feature)


def connect(address: str, quiet: bool) -> bool:
    """ray.init for address ('local': start a local instance); True when this call started Ray, so the caller shuts
    it down. A caller already connected (ray.init done in its own program) is reused as is."""
    env = os.environ.get("RAY_ADDRESS", "")  # ray.init's address when it is given none, or auto
    if address not in ("local", "auto"):
        parse_address(address)  # a malformed or dashboard (http://) address fails before Ray is imported
    elif env not in ("", "local", "auto"):
        parse_address(env, "RAY_ADDRESS")
    ray = import_ray("engine embed --ray")
    if ray.is_initialized():
        return False
    logs = {"logging_level": logging.WARNING, "log_to_driver": not quiet}
    if address not in ("local", "auto"):
        check_speaks_ray(address)
    elif env not in ("", "local", "auto"):
        check_speaks_ray(env, f"RAY_ADDRESS (which --ray {'alone' if address == 'local' else 'auto'} connects to)")
    if address == "local":
        ray.init(include_dashboard=False, **logs)
        return True
    try:
        ray.init(address=address, **logs)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ClusterError(f"cannot connect to the Ray cluster at {address!r} ({type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else ''}); {FIX}") from None
    return True


CLI_NAMES = ("--cpus-per-actor", "--gpus-per-actor")


def check_actors_fit(ray: ModuleType, cpus: float, gpus: float, gpus_by_default: bool = False,
                     names: tuple[str, str] = CLI_NAMES) -> None:
    """ConfigError unless some live node can hold one actor of cpus CPUs and gpus GPUs: a job would otherwise wait
    for resources that never come until its no-progress timeout (Ray Data only warns). More actors than fit just run fewer at once. Nodes an
    autoscaler may add later are not counted."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive", True)]
    if any(_actors_on(node, cpus, gpus) >= 1 for node in nodes):
        return
    total = ray.cluster_resources()
    hint = f" ({names[1]} 1 is the default with --device cuda)" if gpus_by_default else ""
    raise ConfigError(f"the Ray cluster cannot hold one actor of {names[0]} {cpus:g}, {names[1]} {gpus:g}{hint}: it has "
                      f"{len(nodes)} node(s) with {total.get('CPU', 0):g} CPUs and {total.get('GPU', 0):g} GPUs in all; "
                      f"the largest node has {max((n.get('CPU', 0) for n in nodes), default=0):g} CPUs and "
                      f"{max((n.get('GPU', 0) for n in nodes), default=0):g} GPUs. Ask for less per actor, or add a node "
                      "that has it")


def _actors_on(node: dict, cpus: float, gpus: float) -> int:
    """How many actors of cpus CPUs and gpus GPUs one node holds."""
    fits = [node.get("CPU", 0.0) / cpus] + ([node.get("GPU", 0.0) / gpus] if gpus else [])
    return int(math.floor(min(fits) + 1e-9))


def configure_data(ray: ModuleType, quiet: bool) -> None:
    """Ray Data settings every engine job needs (found in a trial on Ray 2.60): retry a unit whose actor raised
    (by default one exception fails the job), fail a stalled job instead of hanging, raise the original error."""
    ctx = ray.data.DataContext.get_current()
    ctx.actor_task_retry_on_errors = True
    ctx.execution_no_progress_timeout_s = NO_PROGRESS_S
    ctx.raise_original_map_exception = True
    ctx.enable_progress_bars = False  # the engine draws its own
    ctx.print_on_execution_start = not quiet
