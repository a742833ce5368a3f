"""A cluster address for `--ray`: parsed, then probed (TCP, then gRPC's HTTP/2 handshake) before ray.init sees it.

ray.init retries an address for minutes when something that is not Ray listens there, so the probe checks that the
port answers as a gRPC server does (a Ray GCS or a Ray Client server): it sends HTTP/2's client preface and waits
for the server's SETTINGS frame. Plain sockets only: no Ray import.
"""
from __future__ import annotations

import os
import socket
import time

from ..errors import ClusterError, ConfigError

CONNECT_TIMEOUT_S = 10.0  # the whole probe (connect and handshake); ray.init itself retries for a minute or more
HANDSHAKE_TIMEOUT_S = 5.0  # a gRPC server answers the preface in one round trip
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + an empty SETTINGS frame
SETTINGS = 0x4  # HTTP/2 frame type; a server's first frame

FIX = ("start a cluster with `ray start --head` and pass the address it prints (host:port, or auto on one of its "
       "nodes), or pass --ray alone for a local Ray instance")


def parse_address(address: str) -> tuple[str, int]:
    """(host, port) of host:port or ray://host:port; ConfigError for any other form, naming the accepted ones
    (an http:// address is the dashboard's, which the Jobs API uses, not a driver's)."""
    scheme, sep, rest = address.partition("://")
    if sep and scheme.lower() in ("http", "https"):
        host = rest.split("/")[0].rpartition(":")[0] or rest.split("/")[0] or "HOST"
        raise ConfigError(f"--ray {address!r} is the Ray dashboard's address (the Jobs API's, for `ray job submit`); "
                          f"engine embed --ray connects as a driver: pass the cluster's address, {host}:6379 (the "
                          f"port `ray start --head` printed; 6379 by default) or ray://{host}:10001 (Ray Client), or "
                          f"submit the command as a job: ray job submit --address {address} -- engine embed ... --ray auto")
    if sep and scheme != "ray":
        raise ConfigError(f"--ray {address!r}: unknown scheme {scheme + '://'!r}; pass host:port, ray://host:port or auto")
    host, colon, port = (rest if sep else address).rpartition(":")
    if not colon or not port.isdigit() or not host or not 0 < int(port) < 65536:
        raise ConfigError(f"--ray {address!r} is not an address: pass host:port (what `ray start --head` prints), "
                          "ray://host:port (Ray Client) or auto; or --ray alone for a local Ray instance")
    return host.strip("[]"), int(port)


def check_speaks_ray(address: str) -> None:
    """ClusterError unless address accepts a TCP connection and answers gRPC's handshake, within CONNECT_TIMEOUT_S.
    With RAY_USE_TLS set the handshake is TLS's, so only the connection is checked."""
    host, port = parse_address(address)
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    try:
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
    except OSError as err:
        raise ClusterError(f"cannot reach the Ray cluster at {address!r} ({type(err).__name__}: {err}); {FIX}") from None
    with sock:
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
            return
        answer = _handshake(sock, min(HANDSHAKE_TIMEOUT_S, max(0.1, deadline - time.monotonic())))
    if len(answer) >= 9 and answer[3] == SETTINGS:
        return
    if answer.startswith(b"HTTP/") or answer.lstrip().startswith(b"<"):
        heard = "it answered as an HTTP/1 server (a dashboard, or another web server?)"
    elif answer:
        heard = f"it answered {answer[:16]!r}, not gRPC's handshake"
    else:
        heard = "it accepted the connection but did not answer gRPC's handshake"
    raise ClusterError(f"{address!r} is not a Ray cluster's address: {heard}; {FIX}")


def _handshake(sock: socket.socket, timeout: float) -> bytes:
    """What the server sends back to HTTP/2's client preface within timeout (up to one frame header, 9 bytes)."""
    deadline = time.monotonic() + timeout
    data = b""
    try:
        sock.settimeout(timeout)
        sock.sendall(H2_PREFACE)
        while len(data) < 9 and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(64)
            if not chunk:
                break
            data += chunk
    except OSError:  # a timeout, or a reset: no gRPC answer either way
        pass
    return data
