"""Ark answers -> relay terms: task objects to Updates, error envelopes to the error tree."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from relay.providers.base import TaskError, Update
from relay.providers.errors import ProviderError, native_text
from relay.providers.normalize import error_of, explain, retry_after, unix_seconds, whole_seconds
from relay.providers.seedance.models import FPS, URL_TTL_S, Family, pixel_size

# --- native codes -----------------------------------------------------------------------------


def code_class(code: str) -> str | None:
    """The normalized error code a native `error.code` names, or None when it names none."""
    if code in ("AuthenticationError", "AccessDenied"):
        return "upstream_auth_failed"
    if code in ("AccountOverdueError", "SetLimitExceeded"):
        return "insufficient_quota"  # SetLimitExceeded: a spend cap the account owner set
    if code.startswith("RateLimitExceeded") or code in ("QuotaExceeded", "ServerOverloaded"):
        return "rate_limit_exceeded"
    if "SensitiveContentDetected" in code:
        return "moderation_blocked"
    if code.startswith(("MissingParameter", "InvalidParameter", "InvalidEndpoint", "ModelNotOpen")):
        return "invalid_request"  # InvalidEndpoint covers InvalidEndpointOrModel.NotFound too
    if code.startswith("NotFound"):
        return "task_expired"
    if code == "InternalServiceError":
        return "upstream_error"
    return None


def native_error(body: Any) -> tuple[str, str, str] | None:
    """(code, message, param) of an `{"error": {...}}` envelope, or None."""
    if not isinstance(body, Mapping) or not isinstance(body.get("error"), Mapping):
        return None
    error = body["error"]
    code = error.get("code")
    if not isinstance(code, str) or not code:
        return None
    message = error.get("message")
    param = error.get("param")
    return (
        code,
        message if isinstance(message, str) else "",
        param if isinstance(param, str) else "",
    )


def shown(code: str, message: str) -> str:
    """A native `code: message` as a client may read it (cleaned, capped)."""
    return f"{native_text(code, 64)}: {native_text(message)}"


def classify(
    status: int, headers: Mapping[str, str], body: Any, raw: str, *, on_task: bool
) -> ProviderError:
    """The exception for an error answer (any HTTP status, 200 with an error envelope included).

    `on_task`: the request named an existing task (query, delete), so a bare 404 means the task
    is gone rather than the model.
    """
    found = native_error(body)
    code, message, param = found or ("", "", "")
    text = shown(code, message) if code else f"HTTP {status}"
    detail = f"HTTP {status}: {raw}"
    kind = code_class(code) if code else None
    if kind is None:
        kind = _by_status(status, on_task)
    param_of = _param(code, param) if kind == "invalid_request" else None
    return error_of(
        kind, explain(kind, text), detail=detail, retry_after=retry_after(headers), param=param_of
    )


def _by_status(status: int, on_task: bool) -> str:
    if status in (401, 403):
        return "upstream_auth_failed"
    if status == 429:
        return "rate_limit_exceeded"
    if status == 404:
        return "task_expired" if on_task else "invalid_request"
    if 400 <= status < 500:
        return "invalid_request"
    return "upstream_error"


def _param(code: str, param: str) -> str | None:
    """`param`, else the suffix of `InvalidParameter.duration`-style codes."""
    if param:
        return param
    head, dot, tail = code.partition(".")
    return tail if dot and head in ("MissingParameter", "InvalidParameter") else None


# --- task objects -----------------------------------------------------------------------------


def task_update(task: Mapping[str, Any], family: Family) -> Update:
    """One task object (`GET /contents/generations/tasks/{id}`) as an Update."""
    status = task.get("status")
    updated = unix_seconds(task.get("updated_at"))
    if status == "queued":
        return Update(status="queued", progress=0)
    if status == "running":
        return Update(status="in_progress")
    if status == "succeeded":
        return _succeeded(task, family, updated)
    if status in ("failed", "expired", "cancelled"):
        return Update(status="failed", error=task_error(task), completed_at=updated)
    return Update(status=None, unknown_status=str(status))  # the relay notes it, once


def _succeeded(task: Mapping[str, Any], family: Family, updated: float | None) -> Update:
    content = task.get("content")
    content = content if isinstance(content, Mapping) else {}
    video_url = content.get("video_url")
    if not isinstance(video_url, str) or not video_url:
        return Update(
            status="failed",
            error=TaskError("generation_failed", "succeeded: the task has no content.video_url"),
            completed_at=updated,
        )
    expires = (updated or time.time()) + URL_TTL_S
    state: dict[str, Any] = {"video_url": video_url, "expires_at": expires}
    last_frame = content.get("last_frame_url")
    if isinstance(last_frame, str) and last_frame:
        state["last_frame_url"] = last_frame
    return Update(
        status="completed",
        progress=100,
        seconds=produced_seconds(task),
        size=produced_size(task, family),
        completed_at=updated,
        expires_at=expires,
        state=state,
    )


def produced_seconds(task: Mapping[str, Any]) -> str | None:
    """`duration`, or `frames` / 24 for a task created with frames (it reports no duration)."""
    duration = task.get("duration")
    if isinstance(duration, int | float) and not isinstance(duration, bool) and duration > 0:
        return whole_seconds(duration)
    frames = task.get("frames")
    if isinstance(frames, int | float) and not isinstance(frames, bool) and frames > 0:
        fps = task.get("framespersecond")
        rate = fps if isinstance(fps, int | float) and not isinstance(fps, bool) and fps else FPS
        return whole_seconds(frames / rate)
    return None


def produced_size(task: Mapping[str, Any], family: Family) -> str | None:
    resolution, ratio = task.get("resolution"), task.get("ratio")
    if not isinstance(resolution, str) or not isinstance(ratio, str):
        return None
    return pixel_size(family.generation, resolution, ratio)


def task_error(task: Mapping[str, Any]) -> TaskError:
    status = str(task.get("status"))
    found = native_error({"error": task.get("error")})
    if status == "expired":
        reason = shown(*found[:2]) if found else "the task did not run before it expired"
        return TaskError("task_expired", f"expired: {reason}")
    if status == "cancelled":
        return TaskError("cancelled", "cancelled: the task was cancelled upstream")
    if found is None:
        return TaskError("generation_failed", "failed: the upstream gave no reason")
    code, message, _ = found
    kind = code_class(code)
    if kind in (None, "task_expired"):
        kind = "generation_failed"  # NotFound.* inside a task names an input, not the task
    return TaskError(kind, shown(code, message))
