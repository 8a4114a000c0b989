"""The errors the relay answers with, and the one envelope they are rendered in.

    RelayError               status  type
    ├── InvalidRequest       400     invalid_request_error   (the code names the problem)
    ├── AuthenticationFailed 401     authentication_error
    ├── PermissionDenied     403     permission_error
    ├── NotFound             404     invalid_request_error
    ├── MethodNotAllowed     405     invalid_request_error
    ├── RequestTimeout       408     invalid_request_error   (a body too slow; Connection: close)
    ├── RequestTooLarge      413     invalid_request_error
    ├── UnsupportedMediaType 415     invalid_request_error
    ├── RangeNotSatisfiable  416     invalid_request_error
    ├── RateLimitExceeded    429     rate_limit_error        (Retry-After, whole seconds >= 1)
    ├── InternalError        500     server_error
    ├── UpstreamFailed       502     server_error
    ├── NoAvailableChannel   503     server_error
    └── ServiceUnavailable   503     server_error            (the relay itself: its database)
        └── StorageUnavailable 503   server_error            storage_unavailable: the database
                                                             cannot write (disk full, locked by
                                                             another process, I/O error); with
                                                             Retry-After

    ConfigError                     not an HTTP error: raised at load, names every bad key

Each error knows its HTTP status, type and code; one middleware in app.py renders
`{"error": {"message", "type", "param", "code"}}`. Messages are written for clients: they never
carry upstream URLs, keys or raw upstream bodies (the log keeps those under the request id).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from relay.scrub import CLIENT_LIMIT, client_text


class RelayError(Exception):
    status: int = 500
    type: str = "server_error"
    default_code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(RelayError):
    status = 400
    type = "invalid_request_error"
    default_code = "invalid_parameter"


class AuthenticationFailed(RelayError):
    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(RelayError):
    status = 403
    type = "permission_error"
    default_code = "insufficient_permissions"


class NotFound(RelayError):
    status = 404
    type = "invalid_request_error"
    default_code = "not_found"


class MethodNotAllowed(RelayError):
    status = 405
    type = "invalid_request_error"
    default_code = "method_not_allowed"


class RequestTimeout(RelayError):
    status = 408
    type = "invalid_request_error"
    default_code = "request_timeout"

    def __init__(self, message: str) -> None:
        # the rest of the body is never read, so the connection cannot carry another request
        super().__init__(message, headers={"Connection": "close"})


class RequestTooLarge(RelayError):
    status = 413
    type = "invalid_request_error"
    default_code = "request_too_large"


class UnsupportedMediaType(RelayError):
    status = 415
    type = "invalid_request_error"
    default_code = "unsupported_media_type"


class RangeNotSatisfiable(RelayError):
    status = 416
    type = "invalid_request_error"
    default_code = "range_not_satisfiable"

    def __init__(self, size: int | None) -> None:
        total = "*" if size is None else str(size)
        super().__init__(
            "the requested range is not satisfiable",
            param="Range",
            headers={"Content-Range": f"bytes */{total}"},
        )


class RateLimitExceeded(RelayError):
    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(message, headers={"Retry-After": str(seconds)})
        self.retry_after = seconds


class InternalError(RelayError):
    pass


class UpstreamFailed(RelayError):
    status = 502
    default_code = "upstream_error"


class NoAvailableChannel(RelayError):
    status = 503
    default_code = "no_available_channel"

    def __init__(self, message: str, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(message, headers={"Retry-After": str(seconds)})
        self.retry_after = seconds


class ServiceUnavailable(RelayError):
    status = 503
    default_code = "service_unavailable"


class StorageUnavailable(ServiceUnavailable):
    """The store could not do its part (disk full, another process holding the write lock past
    the write budget, an I/O error). Nothing was half-done: the statement or transaction that
    failed was rolled back, so a retry is safe; workers treat it as "try again later"."""

    default_code = "storage_unavailable"
    RETRY_AFTER_S = 5

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message, headers={"Retry-After": str(self.RETRY_AFTER_S)})
        self.reason = reason  # for the log: "disk full", "locked", ...


class ConfigError(Exception):
    """Every problem found in one config file, each naming its key path and bad value."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def safe_message(text: str, limit: int = CLIENT_LIMIT) -> str:
    """Upstream text made fit for a client: one line, no markup, no traceback or exception dump,
    no server path, URL or secret, at most `limit` characters ("" when nothing readable is left).
    The rules are relay/scrub.py's."""
    return client_text(text, limit)


class StorageError(Exception):
    """A stored file could not be written, read or removed (a short body, the bucket
    unreachable or refusing): the copier retries it. Here, beside the API errors, so code
    below the storage package (the hosting of inputs) can name it without importing it."""
