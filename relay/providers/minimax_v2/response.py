"""MiniMax V2 answers as pure functions (spec/providers/minimax-v2.md): a task object as an
Update, an error answer as the exception the policy table knows.

V2 answers with real HTTP statuses and an Anthropic-style envelope
`{"type": "error", "error": {"type", "message", "http_code"}, "request_id"}`. Only three `type`
names are attested, so the HTTP status decides first; a plain-text body and a V1-style
`base_resp` are read too (the page asks for both). The only signal read from the words is
MiniMax's own: `sensitive` (moderation) and `invalid task_id` (an unknown or aged-out task).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from relay.providers.base import TaskError, Update
from relay.providers.errors import ProviderError, Unavailable, native_text
from relay.providers.minimax.response import message as v1_message
from relay.providers.minimax.response import native_code, normalized
from relay.providers.minimax_v2.models import RATIOS, RESOLUTIONS, pixel_size
from relay.providers.normalize import (
    created_id,
    error_of,
    explain,
    retry_after,
    unix_seconds,
    url_expiry,
    whole_seconds,
)

URL_TTL_S = 32400.0  # MiniMax states no lifetime; V1's 9 h, as the page's conservative guess
INVALID_TASK = "invalid task_id"
# MiniMax's word for a moderation refusal, but not "case-sensitive" (its resolution rule)
_SENSITIVE = re.compile(r"(?<![\w-])sensitive\b")
MODERATION_CODES = frozenset({"1026", "1027"})  # sensitive input, sensitive output
# the client field an invalid-parameter message is about, by the first word found
_PARAMS = (
    ("duration", "seconds"),
    ("resolution", "size"),
    ("ratio", "size"),
    ("adaptive", "size"),
    ("image", "input_reference"),
    ("video", "input_reference"),
    ("audio", "input_reference"),
    ("role", "input_reference"),
    ("text", "prompt"),
    ("prompt", "prompt"),
    ("model", "model"),
)
_SPECIFIC = frozenset(
    {"upstream_auth_failed", "insufficient_quota", "rate_limit_exceeded", "moderation_blocked"}
)


# --- errors ----------------------------------------------------------------------------------


def _parts(body: Any, raw: str) -> tuple[str, str]:
    """(MiniMax's error type, its message) from the envelope, a V1 base_resp, or a short
    plain-text body (one client saw `402 insufficient balance`)."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            return native_text(error.get("type"), 64), native_text(error.get("message"))
        if isinstance(error, str):
            return "", native_text(error)
        found = native_code(body)
        if found is not None and found[0] != 0:
            return "", v1_message(*found)
        return "", native_text(body.get("message"))
    text = raw.strip()
    if body is None and text and "<" not in text and len(text) <= 200:
        return "", native_text(text)
    return "", ""


def classify(
    status: int,
    headers: Mapping[str, str],
    body: Any,
    raw: str,
    *,
    about_task: bool = False,
    creating: bool = False,
) -> ProviderError:
    """The exception for an error answer, by the page's classification table.

    `about_task`: the call named a task id (query, delete), where `invalid task_id` means the
    task is gone. `creating`: a 5xx may hide a task that was made and billed, so it is never
    sent again (`maybe_created`)."""
    kind_name, message = _parts(body, raw)
    lowered = f"{kind_name} {message}".lower()
    v1 = native_code(body)
    v1_kind = normalized(v1[0]) if v1 is not None and v1[0] != 0 else None
    if about_task and INVALID_TASK in lowered:
        kind = "task_expired"
    elif status in (401, 403):
        kind = "upstream_auth_failed"
    elif status == 402:
        kind = "insufficient_quota"
    elif status == 429:
        kind = "rate_limit_exceeded"
    elif status == 422 or _SENSITIVE.search(lowered):
        kind = "moderation_blocked"
    elif 400 <= status < 500:
        kind = v1_kind if v1_kind in _SPECIFIC else "invalid_request"
    elif status >= 500:
        kind = "upstream_error"
    else:  # an error inside a 2xx: only a V1-style base_resp says one
        kind = v1_kind or "upstream_error"
    text = f"{kind_name}: {message}" if kind_name and message else message or kind_name
    return error_of(
        kind,
        explain(kind, text or f"HTTP {status}"),
        detail=f"HTTP {status}: {raw}" if raw else f"HTTP {status}",
        retry_after=retry_after(headers),
        param=_param(lowered) if kind == "invalid_request" else None,
        maybe_created=creating and status >= 500,
    )


def _param(lowered: str) -> str | None:
    return next((param for word, param in _PARAMS if word in lowered), None)


def failed_answer(status: int, body: Any) -> bool:
    """Whether an answer is an error: a non-2xx status, or a 2xx with a V1 base_resp error."""
    if not 200 <= status < 300:
        return True
    found = native_code(body)
    return found is not None and found[0] != 0


def task_id(body: Any, raw: str) -> str:
    """The id of a 200 create answer (`{"task_id": "..."}`, nothing else)."""
    return created_id(body.get("task_id") if isinstance(body, Mapping) else None, raw)


def task_of(body: Any, raw: str) -> Mapping[str, Any]:
    """The `task` object of a 200 query answer."""
    task = body.get("task") if isinstance(body, Mapping) else None
    if not isinstance(task, Mapping):
        raise Unavailable("the upstream's task answer was unreadable", detail=f"HTTP 200: {raw}")
    return task


# --- task objects ------------------------------------------------------------------------------


def timestamp(value: Any) -> float | None:
    """Unix seconds from an integer, or a numeric string (the official README quotes one)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return unix_seconds(value)


def status_of(task: Mapping[str, Any]) -> str:
    status = task.get("status")
    return status.strip().lower() if isinstance(status, str) else ""


def task_update(task: Mapping[str, Any], *, now: float) -> Update:
    """One task object (`GET /v2/query/video_generation/{id}`) as an Update."""
    status = status_of(task)
    ended = timestamp(task.get("updated_at")) or now
    if status == "queued":
        return Update(status="queued", progress=0)
    if status == "running":
        return Update(status="in_progress")  # no progress field: the relay estimates by time
    if status == "succeeded":
        return _succeeded(task, ended)
    if status in ("failed", "cancelled", "expired"):
        return Update(status="failed", error=task_error(task), completed_at=ended)
    return Update(status=None, unknown_status=native_text(task.get("status"), 40) or None)


def _succeeded(task: Mapping[str, Any], ended: float) -> Update:
    content = task.get("content")
    url = content.get("url") if isinstance(content, Mapping) else None
    seconds = whole_seconds(task.get("duration"))
    if not isinstance(url, str) or not url:
        error = TaskError("generation_failed", "succeeded: the task has no content.url (no output)")
        return Update(status="failed", error=error, completed_at=ended, seconds=seconds)
    expires = url_expiry(url) or ended + URL_TTL_S
    return Update(
        status="completed",
        progress=100,
        seconds=seconds,
        size=produced_size(task),
        completed_at=ended,
        expires_at=expires,
        state={"video_url": url, "expires_at": expires},
    )


def produced_size(task: Mapping[str, Any]) -> str | None:
    """`resolution` x `ratio` as pixels; None for `adaptive` (the submitted size stands)."""
    tier, ratio = task.get("resolution"), task.get("ratio")
    if tier in RESOLUTIONS and ratio in RATIOS:
        return pixel_size(str(tier), str(ratio))
    return None


def task_error(task: Mapping[str, Any]) -> TaskError:
    """A failed, cancelled or expired task's error: `error.code` is a string holding MiniMax's
    numeric code (a number is read too)."""
    status = status_of(task)
    if status == "cancelled":
        return TaskError("cancelled", "cancelled: the task was cancelled upstream")
    if status == "expired":
        return TaskError("task_expired", "expired: the task is past MiniMax's retention")
    error = task.get("error")
    error = error if isinstance(error, Mapping) else {}
    code = error.get("code")
    code = str(code) if isinstance(code, int) and not isinstance(code, bool) else code
    code, message = native_text(code, 32), native_text(error.get("message"))
    text = f"{code}: {message}" if code and message else code or message
    if not text:
        return TaskError("generation_failed", "failed: the upstream gave no reason")
    if code in MODERATION_CODES or _SENSITIVE.search(message.lower()):
        return TaskError("moderation_blocked", text)
    return TaskError("generation_failed", text)


def context_prompt(task: Mapping[str, Any]) -> str | None:
    """The expanded prompt of a succeeded context-IR task (`content.prompt`)."""
    content = task.get("content")
    prompt = content.get("prompt") if isinstance(content, Mapping) else None
    return prompt if isinstance(prompt, str) and prompt.strip() else None
