"""What every request goes through: a request id, authentication to a `Principal`, and the one
error envelope every failure is rendered in; also when it came in (for its metrics) and the
access line of a client that left before its answer. One middleware does all of it, and one
`on_response_prepare` callback stamps the answer: each layer would cost every request a
coroutine of its own (a status read is the request a relay serves most).

A route is authenticated unless its handler is marked `@public`; an unknown path or method is a
404/405 before any key is asked for. Which credential a path takes (API keys on /v1, tokens and
the session cookie on /api) is relay/web/credentials.py; `@admin_only` handlers answer 403 to
everyone else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from aiohttp import web

from relay import logs
from relay.errors import (
    InternalError,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    RelayError,
    RequestTooLarge,
)
from relay.metrics import STARTED, prepared
from relay.web import credentials
from relay.web.keys import PRINCIPAL, REQUEST_ID

log = logging.getLogger("relay.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)


def public(handler: H) -> H:
    """Mark a handler that needs no key (health checks, pages that sign in)."""
    handler.relay_public = True  # type: ignore[attr-defined]
    return handler


def admin_only(handler: H) -> H:
    """Mark a handler only an admin may call (403 for everyone else)."""

    async def checked(request: web.Request) -> web.StreamResponse:
        if not request[PRINCIPAL].admin:
            raise PermissionDenied("only an admin may do this")
        return await handler(request)

    checked.__name__ = handler.__name__
    checked.__doc__ = handler.__doc__
    return checked  # type: ignore[return-value]


def new_request_id(request: web.Request) -> str:
    rid = request[REQUEST_ID] = logs.new_request_id()
    logs.request_id.set(rid)
    return rid


@web.middleware
async def front(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The request id; who is calling, for every matched route that is not public; every error
    as `{"error": {...}}` with its status; the access line of a request cancelled because its
    client left."""
    started = request[STARTED] = time.perf_counter()
    new_request_id(request)
    try:
        if request.match_info.http_exception is None and not getattr(
            handler, "relay_public", False
        ):
            request[PRINCIPAL] = await credentials.principal(request)
        return await handler(request)
    except RelayError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        return error_response(_from_http_exception(request, exc))
    except asyncio.CancelledError:
        logs.abandoned(request, time.perf_counter() - started)
        raise
    except Exception:
        # the path as the access line shows it: a hosted input's token is a credential
        log.exception("unhandled error in %s %s", request.method, logs.log_path(request.raw_path))
        return error_response(InternalError("internal error; see the relay's log"))


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """An answer is about to go out: its `x-request-id`, the access line's memory of it, its
    metrics."""
    response.headers["x-request-id"] = request.get(REQUEST_ID) or new_request_id(request)
    logs.answering(response)
    prepared(request, response)


def json_response(
    value: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(value), status=status, headers=headers, content_type="application/json"
    )


def error_response(exc: RelayError) -> web.Response:
    response = json_response(exc.body(), status=exc.status)
    response.headers.update(exc.headers)
    return response


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> RelayError:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return MethodNotAllowed(
            f"{request.method} is not allowed on {request.path} (allowed: {allowed})",
            headers={"Allow": allowed},
        )
    if isinstance(exc, web.HTTPNotFound):
        return NotFound(f"no route for {request.method} {request.path}")
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return RequestTooLarge("the request body is too large")
    error = RelayError(exc.reason or "request failed", code=exc.reason.lower().replace(" ", "_"))
    error.status = exc.status
    error.type = "invalid_request_error" if exc.status < 500 else "server_error"
    return error
