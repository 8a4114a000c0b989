"""The shapes of a log line, and the scrubber every line passes.

    text      2026-05-09 12:00:00,123 INFO relay.access [req_…] 127.0.0.1 GET /healthz 200 27 0.4ms
    journald  <6>INFO relay.access [req_…] 127.0.0.1 GET /healthz 200 27 0.4ms
    json      {"time":"2026-05-09T12:00:00.123Z","level":"info","logger":"relay.access",…}

journald mode is chosen when stderr is the stream systemd names in `$JOURNAL_STREAM` (its
`device:inode`, as sd_journal_stream_fd(3) says to check, so a shell that merely inherited the
variable keeps timestamps): no timestamp of our own (the journal stamps each line) and the syslog
priority first, on every line of a multi-line record, so `journalctl -p warning` filters. JSON
lines get the same prefix there, and no "time" either.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import re
import secrets
import time
from collections.abc import Mapping
from typing import IO, Any

import orjson

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_id_prefix = ""
_id_count = itertools.count()


def new_request_id() -> str:
    """`req_` and 24 hex digits: 12 random, drawn once per process, then a counter. Unique in
    the process and across restarts (48 random bits) without drawing random bytes from the
    kernel at every request; not a secret (the client sees its own in `x-request-id`), only
    a name to find a request's lines by."""
    global _id_prefix
    if not _id_prefix:
        _id_prefix = "req_" + secrets.token_hex(6)
    return f"{_id_prefix}{next(_id_count):012x}"


ACCESS_LOGGER = "relay.access"

# syslog priorities (sd-daemon(3)): <3> error, <4> warning, <6> info, <7> debug
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def journald_stream(stream: IO[str], env: Mapping[str, str] = os.environ) -> bool:
    """True when `stream` is the journal stream systemd connected us to."""
    value = env.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


# --- scrubbing ------------------------------------------------------------------------------

_SECRETS = re.compile(
    r"(?P<auth>\b(?:bearer|basic)\s+)(?=\S*[0-9])[A-Za-z0-9._~+/=-]{8,}"
    r"|(?P<url>\b[a-z][a-z0-9+.-]*://)(?P<userinfo>[^/\s:@]+:[^/\s@]*@)?"
    r"(?P<where>[^\s?#\"'<>]*)(?P<query>\?[^\s\"'<>]*)?"
    r"|\bsk-[A-Za-z0-9_-]{12,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
    r"|\b[0-9a-fA-F]{64}\b",
    re.IGNORECASE,
)


def _redact(match: re.Match[str]) -> str:
    if match.group("auth"):
        return match.group("auth") + "[redacted]"
    if match.group("url"):
        userinfo = "[redacted]@" if match.group("userinfo") else ""
        query = "?[redacted]" if match.group("query") else ""
        return f"{match.group('url')}{userinfo}{match.group('where')}{query}"
    return "[redacted]"


_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def scrub(text: str) -> str:
    """A line without credentials: bearer tokens, relay and OpenAI-style keys, JWTs, SHA-256
    digests (key hashes), a URL's user:password@ and its query string (signed URLs)."""
    lowered = text.lower()
    # the full pattern costs ~10 us a line; these checks, which every access line passes, 0.5
    if (
        "://" in lowered
        or "sk-" in lowered
        or "eyj" in lowered
        or "bearer" in lowered
        or "basic" in lowered
        or _HEX64.search(text)
    ):
        return _SECRETS.sub(_redact, text)
    return text


# --- line shapes ----------------------------------------------------------------------------


class _Formatter(logging.Formatter):
    def __init__(self, journald: bool) -> None:
        super().__init__()
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        message, trace = self._text(record)
        rid = getattr(record, "request_id", None) or request_id.get()
        return self.shape(
            record.levelno, record.name, rid, record.created, message, trace, record.args
        )

    def shape(
        self,
        levelno: int,
        name: str,
        rid: str,
        created: float,
        message: str,
        trace: str | None = None,
        args: Any = None,
    ) -> str:
        """The line of a record from its parts, `message` and `trace` already scrubbed (the
        access logger's fast path calls this without making a LogRecord)."""
        raise NotImplementedError

    def _text(self, record: logging.LogRecord) -> tuple[str, str | None]:
        """The message and the traceback (if any), both scrubbed."""
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        trace = record.exc_text
        if record.stack_info:
            stack = self.formatStack(record.stack_info)
            trace = f"{trace}\n{stack}" if trace else stack
        return scrub(message), scrub(trace) if trace else None

    def _priority(self, levelno: int) -> str:
        number = _PRIORITY.get(levelno)
        if number is None:
            number = 7 if levelno < logging.INFO else 4 if levelno < 40 else 3
        return f"<{number}>"


def _msecs(created: float) -> int:
    return int((created - int(created)) * 1000)  # as logging.LogRecord has it


class TextFormatter(_Formatter):
    _second = -1
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self._time(record.created)

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:  # one strftime a second, not one a line
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._stamp},{_msecs(created):03d}"

    def shape(
        self,
        levelno: int,
        name: str,
        rid: str,
        created: float,
        message: str,
        trace: str | None = None,
        args: Any = None,
    ) -> str:
        head = f"{logging.getLevelName(levelno)} {name} [{rid}] "
        if not self.journald:
            line = f"{self._time(created)} {head}{message}"
            return f"{line}\n{trace}" if trace else line
        prefix = self._priority(levelno)
        text = f"{message}\n{trace}" if trace else message
        if "\n" not in text:
            return f"{prefix}{head}{text}"
        # the journal takes each line as its own entry: each keeps the record's priority
        first, *rest = text.split("\n")
        return "\n".join([f"{prefix}{head}{first}", *(prefix + line for line in rest)])


_ACCESS_FIELDS = ("client", "method", "path", "status", "bytes", "duration_ms")


class JsonFormatter(_Formatter):
    def shape(
        self,
        levelno: int,
        name: str,
        rid: str,
        created: float,
        message: str,
        trace: str | None = None,
        args: Any = None,
    ) -> str:
        obj: dict[str, Any] = {}
        if not self.journald:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
            obj["time"] = f"{stamp}.{_msecs(created):03d}Z"
        obj["level"] = logging.getLevelName(levelno).lower()
        obj["logger"] = name
        if rid != "-":
            obj["request_id"] = rid
        obj["message"] = message
        if name == ACCESS_LOGGER and isinstance(args, tuple) and len(args) == 6:
            obj.update(zip(_ACCESS_FIELDS, args, strict=True))
            obj["path"] = scrub(obj["path"])
            obj["duration_ms"] = round(obj["duration_ms"], 1)
        if trace:
            obj["exception"] = trace
        line = orjson.dumps(obj).decode()
        return self._priority(levelno) + line if self.journald else line
