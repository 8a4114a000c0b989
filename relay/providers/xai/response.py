"""xAI's answers as pure functions (spec/providers/xai.md): the deferred request's status object
as an Update, and an HTTP error as the exception the policy table knows.

Error bodies are `{"code": "<status phrase>", "error": "<message>"}`; the phrase ("Client
specified an invalid argument", "The caller does not have permission ...") describes the HTTP
status, not the cause, so only the message is read for words. A failed job's `error` has been
seen both as a string and as `{code, message}`: both are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.providers.base import TaskError, Update
from relay.providers.errors import ProviderError, Unavailable, native_text
from relay.providers.normalize import (
    created_id,
    error_of,
    explain,
    moderation_words,
    percent,
    retry_after,
    whole_seconds,
)

QUEUED_GRACE_S = 60.0  # `pending` without progress for longer than this is shown as running
_AUTH_WORDS = ("api key", "api-key", "apikey", "permission", "unauthorized", "unauthenticated")
_QUOTA_WORDS = ("credits", "spending limit")
_POLICY_WORDS = ("moderation", "policy", "safety", "blocked")
_GUIDELINE_WORDS = ("content", "guideline", "policy", "moderation", "safety")
# a field a 400 names, as the client's own parameter
_PARAMS = {
    "reference_images": "input_reference",
    "image": "input_reference",
    "duration": "seconds",
    "aspect_ratio": "size",
    "resolution": "size",
    "prompt": "prompt",
}


def request_id(body: Any, raw: str) -> str:
    """The id of a 200 answer to a create, edit or extension."""
    return created_id(body.get("request_id") if isinstance(body, Mapping) else None, raw)


def classify(
    status: int, headers: Mapping[str, str], body: Any, raw: str, *, on_create: bool
) -> ProviderError:
    """The exception for an HTTP error answer, by the page's classification table."""
    phrase, message = _parts(body)
    lowered = message.lower()
    if status == 401 or (status in (400, 403) and moderation_words(lowered, _AUTH_WORDS)):
        kind = "upstream_auth_failed"
    elif status == 403 and on_create and moderation_words(lowered, _GUIDELINE_WORDS):
        kind = "moderation_blocked"
    elif status == 403:
        kind = "upstream_auth_failed"  # no key word, but a refusal of the caller all the same
    elif status == 429:
        quota = moderation_words(lowered, _QUOTA_WORDS)
        kind = "insufficient_quota" if quota else "rate_limit_exceeded"
    elif status == 404 and not on_create:
        kind = "task_expired"
    elif 400 <= status < 500:
        kind = "invalid_request"
    else:
        kind = "upstream_error"
    text = f"{phrase}: {message}" if phrase and message else message or phrase
    text = text or f"HTTP {status}"
    return error_of(
        kind,
        explain(kind, text),
        detail=f"HTTP {status}: {raw}" if raw else f"HTTP {status}",
        retry_after=retry_after(headers),
        param=_param(lowered) if kind == "invalid_request" else None,
        # a gateway timeout may have passed the create on; any other error answer made nothing
        maybe_created=on_create and status == 504,
    )


def _parts(body: Any) -> tuple[str, str]:
    """(status phrase, message) of an error body; an OpenAI-style `error` object is read too."""
    if not isinstance(body, Mapping):
        return "", ""
    error = body.get("error")
    if isinstance(error, Mapping):
        return native_text(error.get("code") or error.get("type")), native_text(
            error.get("message")
        )
    return native_text(body.get("code")), native_text(error)


def _param(message: str) -> str | None:
    for field, param in _PARAMS.items():
        if field in message:
            return param
    return None


def task_error(error: Any) -> TaskError:
    """A failed job's `error`, a string or `{code, message}`, with its normalised code."""
    if isinstance(error, Mapping):
        code, message = native_text(error.get("code"), 64), native_text(error.get("message"))
        text = f"{code}: {message}" if code and message else code or message
    else:
        text = native_text(error)
    if not text:
        return TaskError("generation_failed", "failed: the upstream gave no reason")
    words = text.lower().replace("_", " ")
    if moderation_words(words, _POLICY_WORDS):
        return TaskError("moderation_blocked", text)
    return TaskError("generation_failed", text)


def update(body: Any, *, now: float, submitted_at: float, ttl_s: float) -> Update:
    """One poll answer as an Update; an unknown status is `status=None` (keep the previous),
    named in `unknown_status` for the relay to note."""
    if not isinstance(body, Mapping) or not isinstance(body.get("status"), str):
        raise Unavailable("the upstream's answer to a poll was unreadable")
    status = body["status"]
    if status == "pending":
        progress = percent(body.get("progress"))
        if progress:
            return Update(status="in_progress", progress=max(1, min(99, progress)))
        if now - submitted_at > QUEUED_GRACE_S:
            # xAI has no running state: past a minute the relay's time estimate is kinder
            return Update(status="in_progress")
        return Update(status="queued", progress=0)
    if status == "done":
        return _done(body, now=now, ttl_s=ttl_s)
    if status == "failed":
        return Update(status="failed", error=task_error(body.get("error")), completed_at=now)
    if status == "expired":
        error = TaskError("task_expired", "expired: the result is no longer available upstream")
        return Update(status="failed", error=error, completed_at=now)
    return Update(status=None, unknown_status=status)


def _done(body: Mapping[str, Any], *, now: float, ttl_s: float) -> Update:
    video = body.get("video")
    video = video if isinstance(video, Mapping) else {}
    url = video.get("url")
    seconds = whole_seconds(video.get("duration"))
    if video.get("respect_moderation") is False or not isinstance(url, str) or not url:
        why = (
            "respect_moderation false"
            if video.get("respect_moderation") is False
            else "no video URL"
        )
        return Update(
            status="failed",
            error=TaskError(
                "moderation_blocked", f"done ({why}): the video was blocked by moderation"
            ),
            completed_at=now,
            seconds=seconds,
        )
    usage = body.get("usage")
    ticks = usage.get("cost_in_usd_ticks") if isinstance(usage, Mapping) else None
    # expires_at is kept for a remix, which needs the URL still alive
    state: dict[str, Any] = {"video_url": url, "expires_at": now + ttl_s}
    if isinstance(ticks, int) and not isinstance(ticks, bool):
        state["cost_usd"] = ticks / 1e10  # 10^10 ticks to the dollar
    return Update(
        status="completed",
        progress=100,
        completed_at=now,
        expires_at=now + ttl_s,
        seconds=seconds,
        state=state,
    )
