"""Kling's answers as the relay's words (spec/providers/kling.md, "Status table", "Error
classification"): the `{code, message, request_id, data}` envelope unwrapped, a task's `data` as
an Update, and every error answer raised as the provider error it stands for. Pure.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from relay.domain import Status
from relay.providers.base import Submitted, TaskError, Update, now
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
from relay.providers.http import Reply
from relay.providers.kling.request import NativeRequest
from relay.providers.normalize import (
    created_id,
    from_millis,
    moderation_words,
    retry_after,
    whole_seconds,
)

log = logging.getLogger("relay.providers.kling")

RESULT_TTL_S = 30 * 86400.0  # Kling deletes the asset 30 days after it was generated

_STATUSES: Mapping[str, Status] = {
    "submitted": "queued",
    "processing": "in_progress",
    "succeed": "completed",
    "failed": "failed",
}
MODERATION_WORDS = ("risk", "safety", "security", "sensitive", "policy")

# Native request fields as the client knows them, for the `param` of a 1201 answer.
_PARAMS = {
    "prompt": "prompt",
    "negative_prompt": "negative_prompt",
    "duration": "seconds",
    "aspect_ratio": "size",
    "mode": "size",
    "image": "input_reference",
    "image_tail": "input_reference",
    "model_name": "model",
    "sound": "generate_audio",
}
_METADATA_FIELDS = frozenset(
    {
        "camera_control",
        "cfg_scale",
        "watermark_info",
        "external_task_id",
        "static_mask",
        "dynamic_masks",
    }
)
_AUTH_CODES = frozenset({1100, 1103, 1304})
_QUOTA_CODES = frozenset({1101, 1102})
_RATE_CODES = frozenset({1302, 1303})
_POLICY_CODES = frozenset({1300, 1301})


# --- submit -------------------------------------------------------------------------------


def parse_submitted(reply: Reply, sent: NativeRequest) -> Submitted:
    """A create answer as the new task; the family goes into its state, to query it under."""
    data = unwrap(reply, submitting=True)
    task_id = created_id(data.get("task_id"), f"HTTP {reply.status}: {reply.text()}")
    first = parse_task(data)
    return Submitted(
        upstream_id=task_id,
        seconds=sent.seconds,
        size=sent.size,
        state={"family": sent.family},
        status=first.status if first.status in ("queued", "in_progress") else "queued",
    )


# --- query --------------------------------------------------------------------------------


def parse_task(data: Mapping[str, Any]) -> Update:
    """One query's `data` object as an Update."""
    native = data.get("task_status")
    status = _STATUSES.get(native) if isinstance(native, str) else None
    if status is None:
        # the relay keeps the previous status and notes the native one (once per channel)
        unknown = native if isinstance(native, str) and native else repr(native)
        return Update(status=None, unknown_status=unknown)
    ended = from_millis(data.get("updated_at"))
    if status == "completed":
        video = first_video(data)
        url = video.get("url") if video else None
        if not isinstance(url, str) or not url:
            # success without a file yet: wait for a query that carries the URL
            log.debug("kling: task %s succeeded without a video URL", data.get("task_id"))
            return Update(status=None)
        assert video is not None
        state = {"video_url": url, "video_id": str(video.get("id") or "")}
        return Update(
            status="completed",
            progress=100,
            seconds=whole_seconds(video.get("duration")),
            completed_at=ended,
            expires_at=(ended or now()) + RESULT_TTL_S,
            state=state,
        )
    if status == "failed":
        reason = data.get("task_status_msg")
        return Update(
            status="failed",
            error=task_failure(reason if isinstance(reason, str) else ""),
            completed_at=ended,
        )
    return Update(status=status, progress=0 if status == "queued" else None)


def first_video(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """videos[0], or None while `task_result` is missing or `{"videos": []}`."""
    result = data.get("task_result")
    videos = result.get("videos") if isinstance(result, Mapping) else None
    if isinstance(videos, list) and videos and isinstance(videos[0], Mapping):
        return videos[0]
    return None


def task_failure(reason: str) -> TaskError:
    message = native_text(reason) or "the Kling task failed without a reason"
    code = (
        "moderation_blocked" if moderation_words(reason, MODERATION_WORDS) else "generation_failed"
    )
    return TaskError(code, message)


# --- answers and errors -------------------------------------------------------------------


def unwrap(reply: Reply, *, submitting: bool) -> Mapping[str, Any]:
    """`data` of a successful envelope; any other answer raised as the error it stands for."""
    payload = reply.json()
    if reply.status == 200 and isinstance(payload, dict) and payload.get("code") == 0:
        data = payload.get("data")
        if isinstance(data, dict):
            return data
        raise Unavailable(
            "Kling answered without task data",
            maybe_created=submitting,
            detail=f"HTTP 200: {reply.text()}",
        )
    raise classify(reply, payload, submitting=submitting)


def classify(reply: Reply, payload: Any, *, submitting: bool) -> ProviderError:
    """The error an answer stands for; the page's code wins over the HTTP status."""
    status = reply.status
    code = payload.get("code") if isinstance(payload, dict) else None
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    native = payload.get("message") if isinstance(payload, dict) else None
    native = native if isinstance(native, str) else ""
    message = f"Kling answered HTTP {status}"
    if code is not None:
        message = f"{code}: {native_text(native)}"
    detail = f"HTTP {status}: {reply.text()}"
    if (code is not None and (1000 <= code <= 1004 or code in _AUTH_CODES)) or status == 401:
        return AuthFailed(message, detail=detail)
    if code in _QUOTA_CODES:
        return QuotaExceeded(message, detail=detail)
    if code in _RATE_CODES or (code is None and status == 429):
        return RateLimited(message, retry_after=retry_after(reply.headers), detail=detail)
    if code in _POLICY_CODES:
        return Rejected(message, moderation=True, detail=detail)
    if (code == 1203 or (code is None and status == 404)) and not submitting:
        return TaskNotFound(message, detail=detail)
    if code is not None and 1200 <= code <= 1299:
        return Rejected(message, param=native_param(native), detail=detail)
    if (code is not None and code >= 5000) or status >= 500:
        # a 504 (5002) is a timeout behind Kling's gateway: the job may exist all the same
        return Unavailable(
            message, maybe_created=submitting and (status == 504 or code == 5002), detail=detail
        )
    if status == 403:
        return AuthFailed(message, detail=detail)
    if 400 <= status < 500:
        return Rejected(message, detail=detail)
    return Unavailable(message, maybe_created=submitting, detail=detail)


def native_param(message: str) -> str | None:
    """The client's name for the field a "duration: invalid value" message is about."""
    field, found, _ = message.partition(":")
    field = field.strip()
    if not found:
        return None
    if field in _PARAMS:
        return _PARAMS[field]
    return "metadata" if field in _METADATA_FIELDS else None
