"""Log setup, the request id every line of a request carries, the access logger, and the
log lines that follow events (each state change logged once, not at every poll)."""

from __future__ import annotations

import contextvars
import logging
import os
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from relay.events import ChannelChanged, Events, TaskFinished

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
TRUST_PROXY = web.AppKey("trust_proxy", bool)  # server.trust_proxy, set by create_app

log = logging.getLogger("relay")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def setup_logging() -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("RELAY_LOG_LEVEL", "INFO").upper())
    logging.getLogger("aiohttp.access").setLevel(logging.INFO)


def client_address(request: web.BaseRequest) -> str:
    """Who is calling: the peer, or with `server.trust_proxy` the first X-Forwarded-For entry
    (the client as the reverse proxy saw it)."""
    trusted = isinstance(request, web.Request) and request.app.get(TRUST_PROXY, False)
    if trusted:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
        if forwarded:
            return forwarded[:64]
    return request.remote or "-"


class AccessLogger(AbstractAccessLogger):
    """One line per request: never the query string's values or any header but the request id."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %d %s %.1fms",
            client_address(request),
            request.method,
            request.path,
            response.status,
            response.body_length,
            time * 1000,
        )


def watch(events: Events) -> None:
    """The log lines that follow what happened: each channel state change and each finished
    task, once."""
    events.subscribe(ChannelChanged, _channel_changed)
    events.subscribe(TaskFinished, _task_finished)


_CHANNEL_LINES: dict[str, tuple[int, str]] = {
    "ready": (logging.INFO, "channel %s is back (%s)"),
    "cooling": (logging.WARNING, "channel %s cools down for %.0f s: %s"),
    "rate_limited": (
        logging.WARNING,
        "channel %s paused for %.0f s by the upstream's rate limit: %s",
    ),
    "credentials": (
        logging.ERROR,
        "channel %s is out: the upstream refused its credentials; tried again in %.0f s "
        "or at a reload: %s",
    ),
    "quota": (
        logging.ERROR,
        "channel %s is out: the upstream account's quota is exhausted; tried again in %.0f s "
        "or at a reload: %s",
    ),
}


def _channel_changed(event: ChannelChanged) -> None:
    level, text = _CHANNEL_LINES.get(event.state, (logging.WARNING, "channel %s is %s"))
    args: tuple[Any, ...]
    if event.state == "ready":
        args = (event.channel, event.why)
    else:
        import time

        args = (event.channel, max(0.0, (event.until or 0) - time.time()), event.why)
    log.log(level, text, *args)


def _task_finished(event: TaskFinished) -> None:
    code = f" ({event.error_code})" if event.error_code else ""
    logging.getLogger("relay.tasks").info("task %s %s%s", event.task_id, event.status, code)
