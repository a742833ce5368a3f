"""The server's errors, and the one place where they become HTTP statuses and bodies (OpenAI's or TEI's shape).

Every refusal is an answer: a status, a body naming the field or index at fault and the fix, and for 429 Retry-After.
"""
from __future__ import annotations

import logging

import orjson
from starlette.responses import Response

from ..errors import EngineError, InputError

log = logging.getLogger("engine.serve")


class RequestError(InputError):
    """A request the server refuses. param names the field or index at fault (OpenAI's error.param)."""

    code = "invalid_request"

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        if code:
            self.code = code


class MalformedRequest(RequestError):
    """The body is not JSON, or not a JSON object."""

    code = "invalid_json"


class InvalidRequest(RequestError):
    """A field has the wrong type or value (400 on the OpenAI route, 422 on TEI's, as each API answers)."""

    code = "invalid_value"


class DimensionsOutOfRange(RequestError):
    """dimensions is outside 1..the model's embedding size."""

    code = "invalid_dimensions"


class PayloadTooLarge(RequestError):
    """Too many bytes, too many inputs, or (with truncate false) a text over max length."""

    code = "payload_too_large"


class QueueFull(RequestError):
    """The queue holds max-queued-tokens already; retry after retry_after seconds."""

    code = "queue_full"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unauthorized(RequestError):
    """Missing or wrong API key."""

    code = "invalid_api_key"


class ShuttingDown(RequestError):
    """The server stopped taking new work (SIGTERM); in-flight requests still finish."""

    code = "shutting_down"


class NotFound(RequestError):
    """No such route, or (GET /v1/models/{id}) no such model."""

    code = "not_found"


class MethodNotAllowed(RequestError):
    """The route exists, with other methods (the Allow header lists them)."""

    code = "method_not_allowed"

    def __init__(self, message: str, allow: str = "") -> None:
        super().__init__(message)
        self.allow = allow


class RequestTimeout(RequestError):
    """The request's headers and body did not all arrive within --read-timeout-s."""

    code = "request_timeout"


class HeadersTooLarge(RequestError):
    """The request line and headers are over --max-header-bytes."""

    code = "headers_too_large"


class MissingHead(RequestError):
    """The served export lacks the output a route needs (POST /embed_all without token embeddings): TEI's 424, the
    status it gives a model that cannot do the route's task."""

    code = "unsupported_by_model"


class WrongTask(RequestError):
    """A route of the other task: an embedding route on a reranker, a rerank route on an embedding model (or on a
    classifier with more than one label). 400 on every route, the message naming the model's task."""

    code = "wrong_task"


# status per error class; InvalidRequest is 422 on TEI's route (TEI answers validation errors with 422)
_STATUS = {MalformedRequest: 400, InvalidRequest: 400, DimensionsOutOfRange: 400, PayloadTooLarge: 413,
           QueueFull: 429, Unauthorized: 401, ShuttingDown: 503, NotFound: 404, MethodNotAllowed: 405, MissingHead: 424,
           RequestTimeout: 408, HeadersTooLarge: 431, WrongTask: 400}
_OPENAI_TYPE = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error",
                405: "invalid_request_error", 408: "invalid_request_error", 413: "invalid_request_error",
                422: "invalid_request_error", 424: "invalid_request_error", 429: "rate_limit_error",
                431: "invalid_request_error", 500: "server_error", 503: "server_error"}
_TEI_TYPE = {400: "Validation", 401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed", 408: "Validation",
             413: "Validation", 422: "Validation", 424: "Backend", 429: "Overloaded", 431: "Validation", 500: "Backend",
             503: "Unhealthy"}
OPENAI_PREFIXES = ("/v1/", "/v2/", "/embeddings", "/models")  # OpenAI's, infinity's and Cohere's paths; the rest TEI's


def flavor_of(path: str) -> str:
    """The API family a path belongs to, for the shape of its error body: 'openai' or 'tei'."""
    return "openai" if path == "/v1" or path.startswith(OPENAI_PREFIXES) else "tei"


def status_of(err: Exception, flavor: str) -> int:
    """The HTTP status for err on a route of flavor 'openai' or 'tei'."""
    for cls in type(err).__mro__:
        if cls in _STATUS:
            status = _STATUS[cls]
            return 422 if flavor == "tei" and cls is InvalidRequest else status
    return 500


def error_response(err: Exception, flavor: str) -> Response:
    """err as a JSON response in the route's API shape. Anything that is not an engine error is a bug: logged, 500."""
    status = status_of(err, flavor)
    if not isinstance(err, EngineError):
        log.exception("unexpected error while serving a request", exc_info=err)
        message = f"internal error ({type(err).__name__}); the server log has the traceback"
    else:
        message = str(err)
    headers = {}
    if isinstance(err, QueueFull):
        headers["Retry-After"] = str(err.retry_after)
    if isinstance(err, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(err, MethodNotAllowed) and err.allow:
        headers["Allow"] = err.allow
    if flavor == "tei":
        body = {"error": message, "error_type": _TEI_TYPE[status]}
    else:
        body = {"error": {"message": message, "type": _OPENAI_TYPE[status], "param": getattr(err, "param", None),
                          "code": getattr(err, "code", None) if status != 500 else "internal_error"}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)
