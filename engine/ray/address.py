"""A cluster address for `--ray`: parsed, then probed before ray.init sees it.

ray.init retries an address for minutes when something that is not Ray listens there, so the probe checks, within
CONNECT_TIMEOUT_S, that the port answers as a gRPC server does (HTTP/2's client preface gets the server's SETTINGS
frame; plain sockets), then that it serves what the address's form connects to: Ray's GCS for host:port, a Ray
Client server for ray://host:port (one empty gRPC call of a method each serves; grpc, not Ray, is imported).
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
GCS_METHOD = "/ray.rpc.NodeInfoGcsService/GetClusterId"  # what ray.init asks a cluster's GCS first
CLIENT_METHOD = "/ray.rpc.RayletDriver/ClusterInfo"  # a Ray Client server's (ray://)

FIX = ("start a cluster with `ray start --head` and pass the address it prints (host:port, or auto on one of its "
       "nodes), or pass --ray alone for a local Ray instance")


def parse_address(address: str, what: str = "--ray") -> tuple[str, int]:
    """(host, port) of host:port or ray://host:port; ConfigError for any other form, naming the accepted ones
    (an http:// address is the dashboard's, which the Jobs API uses, not a driver's)."""
    scheme, sep, rest = address.partition("://")
    if sep and scheme.lower() in ("http", "https"):
        host = rest.split("/")[0].rpartition(":")[0] or rest.split("/")[0] or "HOST"
        raise ConfigError(f"{what} {address!r} is the Ray dashboard's address (the Jobs API's, for `ray job submit`); "
                          f"engine embed --ray connects as a driver: pass the cluster's address, {host}:6379 (the "
                          f"port `ray start --head` printed; 6379 by default) or ray://{host}:10001 (Ray Client), or "
                          f"submit the command as a job: ray job submit --address {address} -- engine embed ... --ray auto")
    if sep and scheme != "ray":
        raise ConfigError(f"{what} {address!r}: unknown scheme {scheme + '://'!r}; pass host:port, ray://host:port or auto")
    host, colon, port = (rest if sep else address).rpartition(":")
    if not colon or not port.isdigit() or not host or not 0 < int(port) < 65536:
        raise ConfigError(f"{what} {address!r} is not an address: pass host:port (what `ray start --head` prints), "
                          "ray://host:port (Ray Client) or auto; or --ray alone for a local Ray instance")
    return host.strip("[]"), int(port)


def check_speaks_ray(address: str, what: str = "--ray") -> None:
    """ClusterError unless address accepts a TCP connection, answers gRPC's handshake and serves its form's service
    (GCS or Ray Client), within CONNECT_TIMEOUT_S. With RAY_USE_TLS set the handshake is TLS's, so only the connection
    is checked. what: where the address came from, for the messages (--ray, or RAY_ADDRESS)."""
    host, port = parse_address(address, what)
    src = "" if what == "--ray" else f" ({what})"
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    try:
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
    except OSError as err:
        raise ClusterError(f"cannot reach the Ray cluster at {address!r}{src} ({type(err).__name__}: {err}); {FIX}") from None
    with sock:
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
            return
        answer = _handshake(sock, min(HANDSHAKE_TIMEOUT_S, max(0.1, deadline - time.monotonic())))
    if len(answer) >= 9 and answer[3] == SETTINGS:
        return _check_service(address, host, port, deadline, what)
    if answer.startswith(b"HTTP/") or answer.lstrip().startswith(b"<"):
        heard = "it answered as an HTTP/1 server (a dashboard, or another web server?)"
    elif answer:
        heard = f"it answered {answer[:16]!r}, not gRPC's handshake"
    else:
        heard = "it accepted the connection but did not answer gRPC's handshake"
    raise ClusterError(f"{address!r}{src} is not a Ray cluster's address: {heard}; {FIX}")


def _check_service(address: str, host: str, port: int, deadline: float, what: str) -> None:
    """The gRPC server at host:port must serve what the address's form connects to: Ray's GCS (host:port) or a Ray
    Client server (ray://host:port); either mistaken for the other is named."""
    client = address.startswith("ray://")
    want, other = (CLIENT_METHOD, GCS_METHOD) if client else (GCS_METHOD, CLIENT_METHOD)
    has = _serves(host, port, want, deadline)
    if has is not False:  # True, or no answer in time: ray.init finds out, within its own deadline
        return
    if _serves(host, port, other, deadline):
        fix = (f"it is the cluster's GCS address: pass --ray {host}:{port} (without ray://)" if client else
               f"it is a Ray Client server: pass --ray ray://{host}:{port}")
        raise ClusterError(f"{what} {address!r}: {fix}")
    raise ClusterError(f"{address!r} is not a Ray cluster's address: it is a gRPC server without Ray's "
                       f"{'Ray Client' if client else 'GCS'} service; {FIX}")


def _serves(host: str, port: int, method: str, deadline: float) -> bool | None:
    """Whether the gRPC server has method: True (it answered, or refused the empty call for another reason: auth),
    False (UNIMPLEMENTED), None (no answer before deadline, or grpc is not installed)."""
    try:
        import grpc  # installed with Ray
    except ImportError:
        return None
    channel = grpc.insecure_channel(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    try:
        channel.unary_unary(method, request_serializer=bytes, response_deserializer=bytes)(
            b"", timeout=max(0.1, deadline - time.monotonic()))
        return True
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.UNIMPLEMENTED:
            return False
        return None if err.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE) else True
    finally:
        channel.close()


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
