"""OpenAI's answers as pure functions (spec/providers/openai.md): the video object to an Update,
and error envelopes to the adapter error tree. Every rule is tested on the page's recorded bodies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from relay.domain import Status
from relay.providers.base import TaskError, Update
from relay.providers.errors import (
    AuthFailed,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    Rejected,
    TaskNotFound,
    Unavailable,
    native_text,
)
from relay.providers.normalize import (
    moderation_words,
    percent,
    retry_after,
    unix_seconds,
    whole_seconds,
)

Phase = Literal["create", "remix", "poll", "content", "delete"]
CREATING: frozenset[Phase] = frozenset({"create", "remix"})

STATUSES: Mapping[str, Status] = {
    "queued": "queued",
    "in_progress": "in_progress",
    "completed": "completed",
    "failed": "failed",
    # not documented upstream; a compatible server might send them
    "cancelled": "failed",
    "canceled": "failed",
    "expired": "failed",
}
ENDED_CODES = {"cancelled": "cancelled", "canceled": "cancelled", "expired": "task_expired"}
# a failed video whose error.code is an HTTP status (vLLM-Omni); any other status is the job's own
FAILED_STATUS_CODES = {400: "invalid_request", 422: "invalid_request", 503: "upstream_error"}
MODERATION_WORDS = ("moderation", "content policy", "content_policy", "safety system")
MODERATION_CODE_WORDS = ("moderation", "content_policy", "safety")
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_*\-]{6,}")
_WXH = re.compile(r"^\d{2,5}x\d{2,5}$")


# --- the video object -------------------------------------------------------------------------


def poll_after(headers: Mapping[str, str]) -> float | None:
    """`openai-poll-after-ms`: the upstream's lower bound for the next poll, in seconds."""
    value = _header(headers, "openai-poll-after-ms")
    try:
        millis = float(value) if value is not None else None
    except ValueError:
        return None
    return millis / 1000.0 if millis is not None and millis > 0 else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def video_size(value: Any) -> str | None:
    return value if isinstance(value, str) and _WXH.match(value) else None


def video_update(body: Mapping[str, Any], poll_after_s: float | None = None) -> Update:
    """One retrieve answer (a video object) as an Update."""
    word = body.get("status")
    status = STATUSES.get(word) if isinstance(word, str) else None
    error = None
    if status == "failed":
        error = video_failure(str(word), body.get("error"))
    done = status == "completed"
    return Update(
        status=status,
        progress=percent(body.get("progress")),
        error=error,
        seconds=whole_seconds(body.get("seconds")),
        size=video_size(body.get("size")),
        completed_at=unix_seconds(body.get("completed_at")) if done else None,
        expires_at=unix_seconds(body.get("expires_at")) if done else None,
        poll_after_s=poll_after_s,
        unknown_status=str(word) if status is None else None,
    )


def video_failure(word: str, error: Any) -> TaskError:
    native = native_error({"error": error}) if error else Native()
    code = ENDED_CODES.get(word, "generation_failed")
    status = error.get("code") if isinstance(error, Mapping) else None
    text = native.text()
    if isinstance(status, int) and not isinstance(status, bool):
        # an HTTP status as the code (vLLM-Omni): it says who was at fault, and as a prefix of
        # the message it would only be noise
        code = FAILED_STATUS_CODES.get(status, code)
        text = native_text(native.message) or f"HTTP {status}"
    if is_moderation(native.code, native.message):
        code = "moderation_blocked"
    return TaskError(code, text or f"the upstream video {word}")


def is_failed_video(body: Any) -> bool:
    """A video object that says the job failed: what vLLM-Omni sends with a non-2xx poll."""
    return (
        isinstance(body, Mapping)
        and body.get("status") == "failed"
        and isinstance(body.get("id"), str)
        and bool(body["id"])
    )


def is_moderation(code: str, message: str) -> bool:
    """`moderation_blocked` (assumed by the page) or a kin such as `content_policy_violation`."""
    return moderation_words(code, MODERATION_CODE_WORDS) or moderation_words(
        message, MODERATION_WORDS
    )


# --- errors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Native:
    """An upstream error as its envelope gives it: `{"error": {...}}` or `{"code", "message"}`."""

    code: str = ""
    message: str = ""
    type: str = ""
    param: str | None = None

    def text(self) -> str:
        """The code and message as a client may read them (cleaned, capped): the raw ones stay
        for classification, which reads words a cleaned message may have lost."""
        code, message = native_text(self.code, 64), native_text(self.message)
        if code and message and code != message:
            return f"{code}: {message}"
        return message or code


def native_error(body: Any) -> Native:
    if not isinstance(body, Mapping):
        return Native()
    inner = body.get("error")
    if isinstance(inner, str):
        return Native(message=inner)
    if inner is None and "detail" in body:
        return fastapi_detail(body["detail"])
    source = inner if isinstance(inner, Mapping) else body
    param = source.get("param")
    return Native(
        code=text_of(source.get("code")),
        message=text_of(source.get("message")),
        type=text_of(source.get("type")),
        param=param if isinstance(param, str) and param else None,
    )


def fastapi_detail(detail: Any) -> Native:
    """FastAPI's `{"detail": "..."}`, or its validation list `[{"loc", "msg", "type"}]`, whose
    first entry names the field (`["body", "seconds"]`)."""
    if isinstance(detail, list) and detail and isinstance(detail[0], Mapping):
        first = detail[0]
        loc = first.get("loc")
        field = loc[-1] if isinstance(loc, list) and loc and isinstance(loc[-1], str) else None
        message = text_of(first.get("msg"))
        return Native(
            code=text_of(first.get("type")),
            message=f"{field}: {message}" if field and message else message,
            param=field if field != "body" else None,
        )
    return Native(message=text_of(detail) if isinstance(detail, str) else "")


def text_of(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return ""
    return value.strip() if isinstance(value, str) else str(value)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Text with the channel's credentials, and anything shaped like an API key, masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _KEY_LIKE.sub("sk-***", text)


def classify(
    status: int, body: Any, headers: Mapping[str, str], phase: Phase, detail: str
) -> ProviderError:
    """An OpenAI error answer as the adapter error tree (the page's classification table)."""
    native = native_error(body)
    text = native.text() or f"HTTP {status}"
    if status in (401, 403):
        return AuthFailed(f"the upstream refused the credentials: {text}", detail=detail)
    if status == 429:
        if "insufficient_quota" in (native.code, native.type):
            return QuotaExceeded(text, detail=detail)
        return RateLimited(text, retry_after=retry_after(headers), detail=detail)
    if 400 <= status < 500 and is_moderation(native.code, ""):
        return Rejected(text, moderation=True, param=native.param, detail=detail)
    if status == 404 and phase not in CREATING:
        return TaskNotFound(f"the upstream no longer has this video: {text}", detail=detail)
    if status in (408, 409, 425) or status >= 500 or status < 400:
        return Unavailable(
            f"the upstream answered HTTP {status}: {text}" if native.text() else text,
            maybe_created=phase in CREATING,
            detail=detail,
        )
    return Rejected(text, param=native.param, detail=detail)
