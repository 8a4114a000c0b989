"""How gateways that imitate the Videos API stray from it, as pure functions
(spec/providers/compat-relay.md): ids as `task_id`, status synonyms, two error envelopes, result
URLs in several places, and an older `/video/generations` envelope.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from relay.domain import Status
from relay.providers.base import TaskError, Update, now
from relay.providers.compat_relay.models import (
    DEFAULT_TTL_S,
    ENDED_CODES,
    KEEP_WORDS,
    MODERATION_CODES,
    MODERATION_WORDS,
    QUOTA_WORDS,
    RESULT_PATHS,
    STATUSES,
)
from relay.providers.errors import (
    AuthFailed,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    Rejected,
    TaskNotFound,
    Unavailable,
)
from relay.providers.normalize import (
    moderation_words,
    percent,
    retry_after,
    unix_seconds,
    whole_seconds,
)
from relay.providers.openai.response import (
    CREATING,
    Native,
    Phase,
    native_error,
    text_of,
    video_size,
)

# --- answers ----------------------------------------------------------------------------------


def task_id(body: Mapping[str, Any]) -> str | None:
    """`id`, else `task_id`, also inside the older envelope's `data`."""
    for source in (body, body.get("data")):
        if not isinstance(source, Mapping):
            continue
        for key in ("id", "task_id"):
            value = source.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, int) and not isinstance(value, bool):
                return str(value)
    return None


def unwrap(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The older `/video/generations` envelope in the shape of the newer one."""
    data = body.get("data")
    if "status" in body or not isinstance(data, Mapping) or "status" not in data:
        return body
    reason = data.get("fail_reason")
    return {
        "task_id": data.get("task_id"),
        "status": data.get("status"),
        "progress": data.get("progress"),
        "error": {"message": reason} if reason else None,
        "url": data.get("result_url"),
        "created_at": data.get("submit_time"),
        "completed_at": data.get("finish_time"),
    }


def status_of(word: Any) -> tuple[str, Status | None]:
    """The status word, lowered and stripped, and its relay status (None: keep the previous)."""
    text = word.strip().lower() if isinstance(word, str) else ""
    return text, STATUSES.get(text)


def result_url(body: Mapping[str, Any]) -> str | None:
    for path in RESULT_PATHS:
        value: Any = body
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if _is_url(value):
            return str(value)
    return None


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))


def gateway_update(
    body: Mapping[str, Any], poll_after_s: float | None = None, received_at: float | None = None
) -> Update:
    """One retrieve answer, read leniently, as an Update."""
    body = unwrap(body)
    word, status = status_of(body.get("status"))
    progress = None
    if status == "in_progress":
        reported = percent(body.get("progress"))
        progress = None if reported is None else max(1, min(95, reported))
    if status != "completed":
        # completed_at is filled in while the job still runs: only trusted once it is done
        return Update(
            status=status,
            progress=progress,
            error=gateway_failure(word, body) if status == "failed" else None,
            poll_after_s=poll_after_s,
            # `unknown` (or none) is expected until the gateway polls its backend: not news
            unknown_status=word if status is None and word not in KEEP_WORDS else None,
        )
    completed_at = unix_seconds(body.get("completed_at")) or received_at or now()
    state = {
        key: value
        for key, value in (("url", result_url(body)), ("thumbnail_url", body.get("thumbnail_url")))
        if _is_url(value)
    }
    return Update(
        status="completed",
        seconds=whole_seconds(body.get("seconds")),
        size=video_size(body.get("size")),
        completed_at=completed_at,
        expires_at=unix_seconds(body.get("expires_at")) or completed_at + DEFAULT_TTL_S,
        state=state,
        poll_after_s=poll_after_s,
    )


def gateway_failure(word: str, body: Mapping[str, Any]) -> TaskError:
    error = body.get("error")
    if isinstance(error, str):
        native = Native(message=error)
    elif isinstance(error, Mapping):
        native = native_error({"error": error})
    else:
        native = Native(message=text_of(body.get("fail_reason")))
    if word in ENDED_CODES:
        code = ENDED_CODES[word]
    elif is_moderation(native):
        code = "moderation_blocked"
    else:
        code = "generation_failed"
    return TaskError(code, native.text() or f"the gateway reported the job as {word}")


def is_moderation(native: Native) -> bool:
    """A moderation code of a backing provider in the code or anywhere in the message (which is
    the backing provider's raw body for `fail_to_fetch_task`)."""
    return native.code in MODERATION_CODES or moderation_words(
        f"{native.code} {native.message}", MODERATION_WORDS
    )


# --- errors -----------------------------------------------------------------------------------


def backing_error(native: Native) -> Native | None:
    """The backing provider's own error inside a `fail_to_fetch_task` message, when it is JSON."""
    try:
        inner = orjson.loads(native.message)
    except orjson.JSONDecodeError:
        return None
    found = native_error(inner)
    if not found.code and isinstance(inner, Mapping):
        found = native_error(inner.get("base_resp") or inner.get("output") or {})
    return found if found.code or found.message else None


def embedded_error(body: Any) -> bool:
    """A 2xx answer that is an error envelope rather than a task."""
    if not isinstance(body, Mapping) or task_id(body) is not None or "status" in body:
        return False
    code = body.get("code")
    coded = code not in (None, "", "success", 0) and not body.get("data")
    return bool(body.get("error")) or coded


def route_missing(status: int, body: Any) -> bool:
    """A 404/405 that is the gateway's router, not an answer about a task."""
    native = native_error(body)
    return status in (404, 405) and not (native.code or native.message)


def classify(
    status: int, body: Any, headers: Mapping[str, str], phase: Phase, detail: str
) -> ProviderError:
    """A gateway error answer as the error tree: the HTTP status first, then the body."""
    native = native_error(body)
    inner = backing_error(native) if native.code == "fail_to_fetch_task" else None
    text = _shown(native, inner, status)
    quota = native.code == "insufficient_user_quota" or moderation_words(
        native.message, QUOTA_WORDS
    )
    moderation = is_moderation(native)
    if status == 429:
        if quota:
            return QuotaExceeded(text, detail=detail)
        return RateLimited(text, retry_after=retry_after(headers), detail=detail)
    if status in (401, 403):
        if quota:
            return QuotaExceeded(text, detail=detail)
        if native.code != "fail_to_fetch_task":
            return AuthFailed(f"the gateway refused the token: {text}", detail=detail)
        if not moderation:  # the backing provider refused the gateway's own credentials
            return Unavailable(text, detail=detail)
    if status >= 500 or status in (408, 425) or 300 <= status < 400:
        return Unavailable(text, maybe_created=phase in CREATING and status >= 500, detail=detail)
    if native.code == "task_not_exist" or (status == 404 and phase not in CREATING):
        # right after create this may only mean "not stored yet": the relay's PollRules wait
        return TaskNotFound(f"the gateway does not know this task: {text}", detail=detail)
    if status == 404 and route_missing(status, body):
        return Unavailable("the gateway has no such route", detail=detail)
    if moderation:
        return Rejected(text, moderation=True, detail=detail)
    if quota:
        return QuotaExceeded(text, detail=detail)
    if status < 300 and "rate" in native.code:
        return RateLimited(text, retry_after=retry_after(headers), detail=detail)
    return Rejected(text, param=native.param, detail=detail)


def _shown(native: Native, inner: Native | None, status: int) -> str:
    """What a client may read: the native code and message, never a raw backing body."""
    if native.code == "fail_to_fetch_task":
        if inner is not None:
            return f"fail_to_fetch_task: {inner.text()}"
        return f"fail_to_fetch_task: the backing provider refused the job (HTTP {status})"
    return native.text() or f"HTTP {status}"
