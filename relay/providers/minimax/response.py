"""MiniMax answers as pure functions (spec/providers/minimax.md).

Every native answer is HTTP 200, errors included: the outcome is `base_resp.status_code`
(0 = OK), so it is read on every answer before anything else. The parsers classify; what a
transient code in a row means is the relay's (`POLL_RULES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.domain import Status
from relay.providers.base import PollRules, TaskError, Update
from relay.providers.errors import (
    AuthFailed,
    ProviderError,
    RateLimited,
    TaskNotFound,
    TransientError,
    Unavailable,
    native_text,
)
from relay.providers.normalize import created_id, error_of, retry_after

URL_TTL_S = 32400.0  # a download URL lasts about 9 h after files/retrieve
# the page: a transient code (1000, 1001, 1013, 1024, 1033) fails the task after 5 in a row
POLL_RULES = PollRules(fail_after_errors=5)

# every base_resp.status_code of the page: its class, and what it means (said when status_msg
# is empty, so the client still learns what the number means); any other code is upstream_error
CODES: Mapping[int, tuple[str, str]] = {
    1000: ("upstream_error", "unknown error"),
    1001: ("upstream_error", "timeout"),
    1002: ("rate_limit_exceeded", "rate limit exceeded"),
    1004: ("upstream_auth_failed", "not authorised"),
    1008: ("insufficient_quota", "insufficient balance"),
    1013: ("upstream_error", "internal error"),
    1024: ("upstream_error", "internal error"),
    1026: ("moderation_blocked", "sensitive input"),
    1027: ("moderation_blocked", "sensitive output"),
    1033: ("upstream_error", "system error"),
    1039: ("rate_limit_exceeded", "token limit exceeded"),
    1041: ("rate_limit_exceeded", "connection limit exceeded"),
    1042: ("invalid_request", "invisible-character ratio limit"),
    2013: ("invalid_request", "invalid parameters"),
    2045: ("rate_limit_exceeded", "rate growth limit exceeded"),
    2049: ("upstream_auth_failed", "invalid api key"),
}
RAISED = frozenset({"rate_limit_exceeded", "upstream_auth_failed"})  # about the call, not the task
FINAL = frozenset({"moderation_blocked", "invalid_request"})  # end the task whatever its status

STATUSES: Mapping[str, Status] = {
    "preparing": "queued",
    "queueing": "queued",
    "processing": "in_progress",
    "success": "completed",
    "fail": "failed",
}

# the client field a 2013 is about, when its message names one
_PARAMS = (
    ("duration", "seconds"),
    ("resolution", "size"),
    ("image", "input_reference"),
    ("prompt", "prompt"),
    ("model", "model"),
)


# --- base_resp and the error tree ------------------------------------------------------------


def native_code(body: Any) -> tuple[int, str] | None:
    """(status_code, status_msg) of `base_resp`, or None when the answer has none."""
    if not isinstance(body, Mapping) or not isinstance(body.get("base_resp"), Mapping):
        return None
    resp = body["base_resp"]
    code = resp.get("status_code")
    if isinstance(code, str) and code.strip().lstrip("-").isdigit():
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool):
        return None
    msg = resp.get("status_msg")
    return code, msg.strip() if isinstance(msg, str) else ""


def message(code: int, msg: str) -> str:
    """`"<status_code>: <status_msg>"`, the form the page gives for a client-facing error."""
    return f"{code}: {native_text(msg) or CODES.get(code, ('', 'error'))[1]}"


def normalized(code: int) -> str:
    """The normalized error code of a native status code."""
    return CODES.get(code, ("upstream_error", ""))[0]


def error_for(
    code: int,
    msg: str,
    *,
    headers: Mapping[str, str] | None = None,
    detail: str | None = None,
    about_file: bool = False,
) -> ProviderError:
    """The exception for a non-zero `base_resp.status_code`.

    `about_file`: the call named a file id (files/retrieve), so a 2013 means the file is gone.
    """
    text = message(code, msg)
    kind = normalized(code)
    if kind == "invalid_request" and about_file and code == 2013:
        return TaskNotFound(text, detail=detail)
    lowered = msg.lower()
    param = next((p for word, p in _PARAMS if word in lowered), None)
    # an error answer: nothing was created
    return error_of(
        kind,
        text,
        detail=detail,
        retry_after=retry_after(headers or {}),
        param=param if kind == "invalid_request" else None,
    )


def http_error(
    status: int, headers: Mapping[str, str], body: Any, raw: str, *, creating: bool = False
) -> ProviderError | None:
    """The exception an answer stands for, from its HTTP status then its base_resp; None if OK.

    MiniMax itself answers 200; another status comes from a gateway in front of it. A gateway
    504 may hide a create that went through, so only that one is `maybe_created` on a create.
    """
    detail = f"HTTP {status}: {raw[:500]}"
    found = native_code(body)
    if found is not None and found[0] != 0:
        return error_for(*found, headers=headers, detail=detail)
    if status == 429:
        return RateLimited(
            "HTTP 429: rate limit exceeded", retry_after=retry_after(headers), detail=detail
        )
    if status != 200:
        gateway_timeout = creating and status == 504
        return Unavailable(
            f"HTTP {status}: the upstream failed", maybe_created=gateway_timeout, detail=detail
        )
    if found is None:
        return Unavailable(
            "the upstream answer had no base_resp", maybe_created=creating, detail=detail
        )
    return None


# --- create ------------------------------------------------------------------------------------


def task_id(body: Any) -> str:
    """The task id of an OK create answer (base_resp already checked)."""
    return created_id(body.get("task_id") if isinstance(body, Mapping) else None)


# --- query -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Succeeded:
    """`Success` with a file id: completed once files/retrieve hands out a URL."""

    file_id: str
    size: str | None


def file_id_of(value: Any) -> str | None:
    """A file id as a string: a string in query answers, a JSON number in retrieve answers."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def failure(code: int, msg: str) -> TaskError:
    """The error of a failed task (rate-limit, auth and unknown-task codes never get here:
    they raise)."""
    if code == 0:
        return TaskError("generation_failed", "task failed")
    return TaskError(normalized(code), message(code, msg))


def unknown_task(body: Mapping[str, Any], code: int, msg: str) -> bool:
    """A 2013 about the task id itself: MiniMax does not know (or no longer knows) the task."""
    lowered = msg.lower()
    return code == 2013 and (
        not body.get("task_id") or "not found" in lowered or "exist" in lowered
    )


def read_query(body: Any, headers: Mapping[str, str], *, raw: str = "") -> Update | Succeeded:
    """One query answer: an Update, or Succeeded when the file is to be retrieved next.

    Raises RateLimited and AuthFailed (the task stays as it is), TaskNotFound for a task id
    MiniMax does not know, and TransientError for any other code that does not end the task
    (the relay fails the task after POLL_RULES.fail_after_errors of those in a row).
    """
    if not isinstance(body, Mapping):
        raise Unavailable("the upstream's task answer was unreadable", detail=raw[:500])
    code, msg = native_code(body) or (0, "")
    detail = f"HTTP 200: {raw[:500]}"
    kind = normalized(code)
    if kind in RAISED:
        raise error_for(code, msg, headers=headers, detail=detail)
    if unknown_task(body, code, msg):
        raise TaskNotFound(message(code, msg), detail=detail)
    native = body.get("status")
    status = STATUSES.get(native.strip().lower()) if isinstance(native, str) else None
    if status == "failed" or kind in FINAL:
        return Update(status="failed", error=failure(code, msg))
    if code != 0:
        raise TransientError(message(code, msg), detail=detail)
    if status == "completed":
        found = file_id_of(body.get("file_id"))
        if found is None:  # Success alone is not done: the file id may come a poll later
            return Update(status="in_progress")
        return Succeeded(found, _size(body.get("video_width"), body.get("video_height")))
    if status == "queued":
        return Update(status="queued", progress=0)
    if status is None:  # kept as it was; the relay notes the string once per channel
        unknown = native.strip()[:40] if isinstance(native, str) and native.strip() else None
        return Update(status=None, unknown_status=unknown)
    # in_progress has no upstream figure: the relay estimates by time
    return Update(status=status)


def _size(width: Any, height: Any) -> str | None:
    if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
        return f"{width}x{height}"
    return None


# --- files/retrieve ----------------------------------------------------------------------------


def file_urls(body: Any) -> tuple[str, ...]:
    """`download_url` then `backup_download_url`, those present, from an OK retrieve answer."""
    file = body.get("file") if isinstance(body, Mapping) else None
    if not isinstance(file, Mapping):
        return ()
    urls = (file.get("download_url"), file.get("backup_download_url"))
    return tuple(u for u in urls if isinstance(u, str) and u.startswith(("https://", "http://")))


def read_file(body: Any, headers: Mapping[str, str], raw: str = "") -> tuple[str, ...]:
    """The URLs of a 200 retrieve answer; raises what an error answer stands for (a 2013 here
    is a file id MiniMax no longer knows: TaskNotFound)."""
    detail = f"HTTP 200: {raw[:500]}"
    found = native_code(body)
    if found is None:
        raise Unavailable("the upstream's file answer had no base_resp", detail=detail)
    if found[0] != 0:
        raise error_for(*found, headers=headers, detail=detail, about_file=True)
    urls = file_urls(body)
    if not urls:
        raise Unavailable("the upstream listed no download URL for the file", detail=detail)
    return urls


def read_confirmation(body: Any, headers: Mapping[str, str], raw: str = "") -> tuple[str, ...]:
    """A retrieve answer as a poll reads it right after `Success`: a rate limit or a refused
    key raises as it is; any other refusal (no URL yet, a transient code, a file id not yet
    known) is a transient poll error, counted like the transient codes."""
    try:
        return read_file(body, headers, raw)
    except (RateLimited, AuthFailed):
        raise
    except ProviderError as exc:
        raise TransientError(exc.message, detail=exc.detail) from None


def completed(found: Succeeded, *, now: float) -> Update:
    """The task's end once files/retrieve has a URL: the URL itself is never kept (it expires;
    the file id does not)."""
    return Update(
        status="completed",
        progress=100,
        size=found.size,
        completed_at=now,
        expires_at=now + URL_TTL_S,
        state={"file_id": found.file_id},
    )
