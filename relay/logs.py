"""Log setup, the request id every line of a request carries, the access logger, and the
log lines that follow events (each state change logged once, not at every poll). The line
shapes (plain, journald, JSON) and the scrubber are in logformat.py.

Access lines are the one thing logged at every request, so under `relay serve` they take a short
way: the line is shaped by the same formatter, from the same parts, but without a LogRecord
or a walk through the logging hierarchy, and the lines of one turn of the event loop go out
in one write at its end (one system call for many requests under load, microseconds later).
Any other line first writes the access lines waiting before it, so the order stays; a line
from another thread writes at once. Whenever the logging setup is not the one
`setup_logging` made (a test capturing records, a handler added), access lines go through
`logging` like every other line.

`log_level` (or `$RELAY_LOG_LEVEL`, which wins) applies to the relay's own loggers; other
libraries stay at INFO or above, so DEBUG shows the relay's decisions, not every SQL statement of
the database driver. Every line passes `scrub`, a last line of defence for credentials that
should never have reached a message (the code does not log them in the first place).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import IO, Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from relay.errors import ConfigError
from relay.events import (
    ChannelChanged,
    Events,
    TaskCreated,
    TaskFinished,
    TaskSubmitted,
)
from relay.hosting import ROUTE as HOSTED_ROUTE
from relay.logformat import (
    ACCESS_LOGGER,
    JsonFormatter,
    TextFormatter,
    journald_stream,
    new_request_id,
    request_id,
    scrub,
)

__all__ = [
    "TRUST_PROXY",
    "AccessLogger",
    "abandoned",
    "answering",
    "client_address",
    "count_body",
    "new_request_id",
    "request_id",
    "setup_logging",
    "watch",
]

TRUST_PROXY = web.AppKey("trust_proxy", bool)  # server.trust_proxy, set by create_app

log = logging.getLogger("relay")
access_log = logging.getLogger(ACCESS_LOGGER)

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
# routes a monitor calls every few seconds: their successes are DEBUG lines
QUIET_PATHS = frozenset({"/healthz", "/metrics"})
MAX_PATH = 200
ACCESS = "%s %s %s %d %d %.1fms"  # client, method, path, status, body bytes, duration
MAX_HEADS = 1024  # scrubbed "client method path" kept for access lines

# the body bytes of the current request that went out beside aiohttp's writer (sendfile, pipes)
_body_sent: contextvars.ContextVar[int | None] = contextvars.ContextVar("body_sent", default=None)
# why aiohttp's parser refused the current request (the error's class name, never its text)
_refused: contextvars.ContextVar[str | None] = contextvars.ContextVar("refused", default=None)


# --- setup ----------------------------------------------------------------------------------


def log_level(configured: str = "info", env: Mapping[str, str] = os.environ) -> int:
    """The level: $RELAY_LOG_LEVEL when set, else `[server] log_level`."""
    name = env.get("RELAY_LOG_LEVEL", "").strip().lower() or configured.lower()
    if name == "warn":
        name = "warning"
    if name not in LEVELS:
        raise ConfigError(
            [f"RELAY_LOG_LEVEL: must be one of {', '.join(LEVELS)} (got {name[:20]!r})"]
        )
    return LEVELS[name]


def setup_logging(
    level: str = "info",
    fmt: str = "text",
    *,
    stream: IO[str] | None = None,
    env: Mapping[str, str] = os.environ,
) -> None:
    """Configure the root logger for `relay serve`: the level, the line shape, the filters."""
    global _lines
    out = stream if stream is not None else sys.stderr
    journald = journald_stream(out, env)
    formatter = JsonFormatter(journald) if fmt == "json" else TextFormatter(journald)
    handler = _lines = LineHandler(out, formatter)
    handler.addFilter(RequestIdFilter())
    chosen = log_level(level, env)
    # what no line shows, not worked out for each record (the logging docs' "Optimization")
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(chosen, logging.INFO))  # other libraries: INFO at the most
    log.setLevel(chosen)
    # aiosqlite logs every statement with its parameters (key digests) at DEBUG
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, ParserErrorFilter) for f in server.filters):
        server.addFilter(ParserErrorFilter())


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler of `relay serve`: every line to the stream, access lines batched per
    turn of the event loop (see the module's docstring)."""

    def __init__(self, stream: IO[str], formatter: TextFormatter | JsonFormatter) -> None:
        super().__init__(stream)
        self.setFormatter(formatter)
        self.shaper = formatter
        self._pending: list[str] = []  # access lines waiting for the end of this loop turn
        self._loop: asyncio.AbstractEventLoop | None = None  # where a write is scheduled
        self._heads: dict[tuple[str, str, str], str] = {}  # (client, method, path) -> scrubbed

    def access(self, level: int, args: tuple[Any, ...]) -> None:
        """One access line, shaped as `format` would shape its record. A poller reads one path
        over and over: "client method path" is scrubbed once and kept (the status, byte count
        and duration that follow are numbers; no pattern of `scrub` reaches across a space)."""
        client, method, path, status, sent, ms = args
        key = (client, method, path)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) >= MAX_HEADS:
                self._heads.clear()
            head = self._heads[key] = scrub(f"{client} {method} {path}")
        message = f"{head} {status:d} {sent:d} {ms:.1f}ms"  # ACCESS % args, scrubbed
        line = self.shaper.shape(
            level, ACCESS_LOGGER, request_id.get(), time.time(), message, None, args
        )
        loop = asyncio._get_running_loop()
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(line + self.terminator)
            if loop is None:
                self._write_pending()
            elif self._loop is not loop:  # none scheduled yet (or on a loop that is gone)
                self._loop = loop
                loop.call_soon(self._end_of_turn)

    def _end_of_turn(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._loop = None
            self._write_pending()

    def _write_pending(self) -> None:
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self.stream.write(text)
            self.stream.flush()

    def emit(self, record: logging.LogRecord) -> None:
        self._write_pending()  # the lock is held: Handler.handle took it
        super().emit(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()
        super().flush()

    def ready(self) -> bool:
        """Still the setup `setup_logging` made: this handler alone, nothing in between."""
        root = logging.root
        return (
            len(root.handlers) == 1
            and root.handlers[0] is self
            and not root.filters
            and not access_log.handlers
            and not access_log.filters
            and access_log.propagate
            and not log.handlers
            and not log.filters
            and log.propagate
        )


_lines: LineHandler | None = None  # set by setup_logging


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class ParserErrorFilter(logging.Filter):
    """aiohttp logs a request its parser refused with a traceback whose text quotes the bad
    bytes (the first ~100 of an Authorization header): drop it, keep its class name for the
    access line that follows (the client got a 400; one line says so)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            _refused.set(type(exc).__name__)
            return False
        return True


# --- access lines ---------------------------------------------------------------------------


def count_body(size: int) -> None:
    """Body bytes of the current request sent outside aiohttp's writer (sendfile, an upstream
    pipe), for its access line."""
    _body_sent.set((_body_sent.get() or 0) + size)


def client_address(request: web.BaseRequest) -> str:
    """Who is calling: the peer, or with `server.trust_proxy` the first X-Forwarded-For entry
    (the client as the reverse proxy saw it)."""
    if refused_by_parser(request):
        return request.remote or "-"  # no app, no headers
    return _client(request)


def _client(request: web.BaseRequest) -> str:
    """client_address of a request the parser took."""
    trusted = isinstance(request, web.Request) and request.app.get(TRUST_PROXY, False)
    if trusted:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
        if forwarded:
            return _printable(forwarded[:64])
    return request.remote or "-"


def refused_by_parser(request: web.BaseRequest) -> bool:
    """aiohttp hands what its parser refused on as a stand-in "UNKNOWN / HTTP/1.0" request with
    no headers and no route (so no `request.app`)."""
    return request.method == "UNKNOWN" and not request.headers


def _printable(text: str) -> str:
    if text.isascii() and text.isprintable():
        return text
    return text.encode("unicode_escape").decode("ascii")


def log_path(raw: str) -> str:
    """The path as the client sent it, without the query (its values may be secrets) or a
    hosted input's token, bounded and escaped so a line stays one line."""
    path = raw.partition("?")[0]
    if path.startswith(HOSTED_ROUTE):  # the token is the credential of a hosted input
        return HOSTED_ROUTE + "(token)"
    if len(path) > MAX_PATH:
        path = path[:MAX_PATH] + "..."
    return _printable(path)


def body_bytes(request: web.BaseRequest, response: web.StreamResponse) -> int:
    """The body bytes that really went out: counted by the sender for files and pipes, else
    the length of a response that was written to its end."""
    counted = _body_sent.get()
    if counted is not None:
        return counted
    if request.method == "HEAD" or not response.body_length:  # HEAD, or never finished
        return 0
    length = response.content_length
    return length if length is not None else response.body_length


def _access(request: web.BaseRequest, status: int, sent: int, seconds: float) -> None:
    refused = refused_by_parser(request)
    if refused:
        request_id.set(new_request_id())  # this task serves this request only
        why = _refused.get()
        path = f"(refused by the HTTP parser: {why})" if why else "(refused by the HTTP parser)"
        method = "-"
        level = logging.INFO
    else:
        method, path = request.method, log_path(request.raw_path)
        quiet = status < 400 and path in QUIET_PATHS
        level = logging.DEBUG if quiet else logging.INFO
    if access_log.isEnabledFor(level):
        client = (request.remote or "-") if refused else _client(request)
        args = (client, method, path, status, sent, seconds * 1000)
        lines = _lines
        if lines is not None and lines.ready():
            lines.access(level, args)
        else:
            access_log.log(level, ACCESS, *args)


class AccessLogger(AbstractAccessLogger):
    """One line per request: client, method, path (never the query), status, body bytes sent,
    duration; the request id comes with every line. /healthz and /metrics answering fine are
    DEBUG lines, and a request aiohttp's parser refused gets a line like any other."""

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(access_log, log_format)  # ours, whatever aiohttp passes

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        _access(request, response.status, body_bytes(request, response), time)


_prepared: contextvars.ContextVar[web.StreamResponse | None] = contextvars.ContextVar(
    "prepared", default=None
)
ABANDONED = 499  # nginx's "client closed request": the client left before an answer began


def answering(response: web.StreamResponse) -> None:
    """The current request's answer began (its headers are going out)."""
    _prepared.set(response)


def abandoned(request: web.Request, seconds: float) -> None:
    """The access line of a request whose client left: aiohttp cancels the handler and logs
    nothing, so the relay's middleware calls this (the status already sent, else 499, and the
    body bytes that went out)."""
    response = _prepared.get()
    status = response.status if response is not None else ABANDONED
    _access(request, status, _body_sent.get() or 0, seconds)


# --- lines that follow events ---------------------------------------------------------------


def watch(events: Events) -> None:
    """The log lines that follow what happened: each channel state change and each finished
    task, once; at DEBUG, where each new task was routed and when it is polled first."""
    events.subscribe(ChannelChanged, _channel_changed)
    events.subscribe(TaskFinished, _task_finished)
    events.subscribe(TaskCreated, _task_created)
    events.subscribe(TaskSubmitted, _task_submitted)


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
        args = (event.channel, max(0.0, (event.until or 0) - time.time()), event.why)
    log.log(level, text, *args)


def _task_finished(event: TaskFinished) -> None:
    code = f" ({event.error_code})" if event.error_code else ""
    logging.getLogger("relay.tasks").info("task %s %s%s", event.task_id, event.status, code)


def _task_created(event: TaskCreated) -> None:
    logging.getLogger("relay.tasks").debug(
        "task %s: model %s routed to channel %s", event.task_id, event.model, event.channel
    )


def _task_submitted(event: TaskSubmitted) -> None:
    due = ""
    if event.next_poll_at is not None:
        due = f"; first poll in {max(0.0, event.next_poll_at - time.time()):.1f} s"
    logging.getLogger("relay.tasks").debug(
        "task %s: accepted by channel %s (%s)%s", event.task_id, event.channel, event.provider, due
    )
