"""The HTTP/1.1 protocol: uvicorn's httptools protocol with the bounds it lacks, so that no client holds a connection
(a file descriptor) or the server's memory by sending slowly or much:

- idle: a connection with no request in progress (a new one that has sent nothing, or one kept alive after an
  answer) is closed after --idle-timeout-s (uvicorn arms its keep-alive timer only after an answer);
- read: a request's headers and body must all arrive within --read-timeout-s of its first byte; one that stalls
  (mid-headers, mid-body, or dripping a byte at a time) gets 408 and its connection is closed;
- headers: a request line plus headers over --max-header-bytes get 431, counted as the bytes arrive (httptools itself
  reads headers of any size).
"""
from __future__ import annotations

import http

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .errors import HeadersTooLarge, RequestError, RequestTimeout, error_response, flavor_of


def bounded_protocol(max_header_bytes: int, read_timeout_s: float) -> type[HttpToolsProtocol]:
    """uvicorn's HttpToolsProtocol with the idle, read and header bounds above (the idle time is uvicorn's
    timeout_keep_alive)."""

    class BoundedProtocol(HttpToolsProtocol):
        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._in_head, self._head_bytes, self._heads, self._deadline = True, 0, 0, None
            self._arm_idle()

        def connection_lost(self, exc) -> None:
            self._cancel_deadline()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.transport.is_closing():
                return
            if self._in_head:
                room = max_header_bytes - self._head_bytes
                if len(data) > room:  # feed up to the limit: the headers must end within it
                    heads = self._heads
                    super().data_received(data[:room + 1])
                    if self._heads == heads and not self.transport.is_closing():
                        self._refuse(HeadersTooLarge(f"the request line and headers are over this server's limit of "
                                                     f"{max_header_bytes} bytes; send smaller headers (or start the "
                                                     f"server with a larger --max-header-bytes)"))
                        return
                    data = data[room + 1:]
                else:
                    self._head_bytes += len(data)
            if data and not self.transport.is_closing():
                super().data_received(data)
            if not self.transport.is_closing() and not self._busy():
                self._arm_idle()  # bytes that start no request (blank lines) do not keep a connection open

        # parser callbacks
        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._cancel_deadline()
            self._deadline = self.loop.call_later(read_timeout_s, self._read_timed_out)

        def on_headers_complete(self) -> None:
            self._in_head, self._heads = False, self._heads + 1
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._cancel_deadline()
            self._in_head, self._head_bytes = True, 0
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._deadline is not None:  # the next request is arriving: its read deadline bounds it, not idleness
                self._unset_keepalive_if_required()

        # the bounds
        def _busy(self) -> bool:
            """A request is being received, or answered."""
            return self._deadline is not None or (self.cycle is not None and not self.cycle.response_complete)

        def _arm_idle(self) -> None:
            if self.timeout_keep_alive_task is None:
                self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive,
                                                                    self.timeout_keep_alive_handler)

        def _cancel_deadline(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _read_timed_out(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            if not self._in_head and self.cycle is not None and self.cycle.response_started:
                self.transport.close()  # this request was answered (a route that did not wait for its body): just close
                return
            self._refuse(RequestTimeout(f"the request did not arrive within this server's {read_timeout_s:g} s "
                                        f"(headers and body); send it whole (or start the server with a larger "
                                        f"--read-timeout-s)"))

        def _refuse(self, err: RequestError) -> None:
            """Answer err (in the path's API shape, when the path is known) and close the connection."""
            path = (self.scope or {}).get("path", "") if not self._in_head else ""
            response = error_response(err, flavor_of(path))
            status = response.status_code
            head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode()]
            head += [name + b": " + value + b"\r\n" for name, value in response.raw_headers]
            self.transport.write(b"".join(head) + b"connection: close\r\n\r\n" + response.body)
            if self.cycle is not None:
                self.cycle.keep_alive = False
            self.transport.close()

    return BoundedProtocol
