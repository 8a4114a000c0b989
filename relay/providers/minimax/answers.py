"""MiniMax answers as pure functions (spec/providers/minimax.md).

Every native answer is HTTP 200, errors included: the outcome is `base_resp.status_code`
(0 = OK), so it is read on every answer before anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.providers.base import (
    ProviderError,
    RateLimited,
    Status,
    TaskError,
    TaskNotFound,
    Unavailable,
    Update,
)
from relay.providers.normalize import error_of, retry_after

URL_TTL_S = 32400.0  # a download URL lasts about 9 h after files/retrieve
STREAK = "errors_in_a_row"  # Update.state key: poll errors counted towards STREAK_LIMIT
STREAK_LIMIT = 5

AUTH = frozenset({1004, 2049})
QUOTA = frozenset({1008})
RATE = frozenset({1002, 1039, 1041, 2045})
BAD = frozenset({2013, 1042})
MODERATION = frozenset({1026, 1027})
TRANSIENT = frozenset({1000, 1001, 1013, 1024, 1033})

# said when status_msg is empty, so the client still learns what the number means
NAMES: Mapping[int, str] = {
    1000: "unknown error",
    1001: "timeout",
    1002: "rate limit exceeded",
    1004: "not authorised",
    1008: "insufficient balance",
    1013: "internal error",
    1024: "internal error",
    1026: "sensitive input",
    1027: "sensitive output",
    1033: "system error",
    1039: "token limit exceeded",
    1041: "connection limit exceeded",
    1042: "invisible-character ratio limit",
    2013: "invalid parameters",
    2045: "rate growth limit exceeded",
    2049: "invalid api key",
}

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
    return f"{code}: {(msg or NAMES.get(code, 'error'))[:200]}"


def normalized(code: int) -> str:
    """The normalized error code of a native status code."""
    if code in AUTH:
        return "upstream_auth_failed"
    if code in QUOTA:
        return "insufficient_quota"
    if code in RATE:
        return "rate_limit_exceeded"
    if code in BAD:
        return "invalid_request"
    if code in MODERATION:
        return "moderation_blocked"
    return "upstream_error"


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
    value = body.get("task_id") if isinstance(body, Mapping) else None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        # status 0 without an id: the job may exist upstream, so it must not be sent again
        raise Unavailable("the upstream accepted the create without a task id", maybe_created=True)
    return value


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


def streak(state: Mapping[str, Any], text: str) -> Update:
    """One more poll error in a row: no change until the limit, then failed upstream_error."""
    count = state.get(STREAK, 0)
    count = (count if isinstance(count, int) else 0) + 1
    if count >= STREAK_LIMIT:
        return Update(
            status="failed",
            error=TaskError("upstream_error", f"{text} ({count} polls in a row)"),
            state={STREAK: count},
        )
    return Update(status=None, state={STREAK: count})


def failure(body: Mapping[str, Any], code: int, msg: str) -> TaskError:
    """The error of a failed task (rate-limit and auth codes never get here: they raise)."""
    if code == 0:
        return TaskError("generation_failed", "task failed")
    kind = normalized(code)
    if code == 2013:
        unknown = not body.get("task_id") or any(w in msg.lower() for w in ("not found", "exist"))
        kind = "task_expired" if unknown else "invalid_request"
    return TaskError(kind, message(code, msg))


def read_query(
    body: Any, headers: Mapping[str, str], state: Mapping[str, Any], *, raw: str = ""
) -> Update | Succeeded:
    """One query answer: an Update, or Succeeded when the file is to be retrieved next.

    Raises RateLimited and AuthFailed (the task stays as it is); transient codes are counted in
    the state and fail the task after STREAK_LIMIT in a row.
    """
    if not isinstance(body, Mapping):
        raise Unavailable("the upstream's task answer was unreadable", detail=raw[:500])
    code, msg = native_code(body) or (0, "")
    if code in RATE or code in AUTH:
        raise error_for(code, msg, headers=headers, detail=f"HTTP 200: {raw[:500]}")
    native = body.get("status")
    status = STATUSES.get(native.strip().lower()) if isinstance(native, str) else None
    if status == "failed" or code in MODERATION or code in BAD:
        return Update(status="failed", error=failure(body, code, msg))
    if code != 0:
        return streak(state, message(code, msg))
    reset = {STREAK: 0} if state.get(STREAK) else {}
    if status == "completed":
        found = file_id_of(body.get("file_id"))
        if found is None:  # Success alone is not done: the file id may come a poll later
            return Update(status="in_progress", state=reset)
        return Succeeded(found, _size(body.get("video_width"), body.get("video_height")))
    if status == "queued":
        return Update(status="queued", progress=0, state=reset)
    # in_progress has no upstream figure: the relay estimates by time
    return Update(status=status, state=reset)


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


def completed(found: Succeeded, *, now: float) -> Update:
    """The task's end once files/retrieve has a URL: the URL itself is never kept (it expires;
    the file id does not)."""
    return Update(
        status="completed",
        progress=100,
        size=found.size,
        completed_at=now,
        expires_at=now + URL_TTL_S,
        state={"file_id": found.file_id, STREAK: 0},
    )
