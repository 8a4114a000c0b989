"""Vidu's answers as pure functions (spec/providers/vidu.md): task states, error names and
the exceptions they become, the submit and query bodies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.domain import Status
from relay.providers.base import TaskError, Update
from relay.providers.errors import ProviderError, Unavailable, native_text
from relay.providers.normalize import error_of, from_rfc3339, percent, retry_after

STATES: Mapping[str, Status] = {
    "created": "queued",
    "queueing": "queued",
    "processing": "in_progress",
    "success": "completed",
    "failed": "failed",
}

# native error name -> normalized code; a failed task's err_code uses the same names
CODES: Mapping[str, str] = {
    **dict.fromkeys(("Unauthorized", "Forbidden"), "upstream_auth_failed"),
    "CreditInsufficient": "insufficient_quota",
    **dict.fromkeys(
        ("TooManyRequests", "QuotaExceeded", "SystemThrottling"), "rate_limit_exceeded"
    ),
    **dict.fromkeys(
        (
            "BadRequest",
            "FieldLacking",
            "FieldUnwanted",
            "FieldItemCountOutOfRange",
            "FieldInvalid",
            "PageSizeOutOfRange",
            "ImageDownloadFailure",
            "ImageFormatInvalid",
            "ModelUnavailable",
            "Conflict",
            "OperationInProcess",
        ),
        "invalid_request",
    ),
    **dict.fromkeys(
        ("TaskPromptPolicyViolation", "AuditSubmitIllegal", "CreationPolicyViolation"),
        "moderation_blocked",
    ),
    **dict.fromkeys(("UserCancelled", "Canceled"), "cancelled"),
    **dict.fromkeys(("TaskNotFound", "CreationNotFound", "NotFound"), "task_expired"),
    "InternalServiceFailure": "upstream_error",
}

# a query names only err_code, so the client gets a readable phrase beside it
DESCRIPTIONS: Mapping[str, str] = {
    "InternalServiceFailure": "the upstream failed to generate the video",
    "CreationPolicyViolation": "the generated video was blocked by content moderation",
    "TaskPromptPolicyViolation": "the prompt was blocked by content moderation",
    "AuditSubmitIllegal": "the input was blocked by content moderation",
    "UserCancelled": "the task was cancelled upstream",
    "CreditInsufficient": "the upstream account has no credits left",
    "ImageDownloadFailure": "the upstream could not download an input image",
    "ImageFormatInvalid": "an input image has an unsupported format",
    "PageSizeOutOfRange": "an input image has an unsupported size, format or ratio",
}

# the client field a refusal is about, where the name tells
_PARAMS: Mapping[str, str] = {
    **dict.fromkeys(
        (
            "PageSizeOutOfRange",
            "ImageDownloadFailure",
            "ImageFormatInvalid",
            "FieldItemCountOutOfRange",
        ),
        "input_reference",
    ),
    "ModelUnavailable": "model",
}


def task_error(err_code: Any) -> TaskError:
    name = err_code if isinstance(err_code, str) and err_code else ""
    if not name:
        return TaskError("generation_failed", "failed: the upstream gave no reason")
    code = CODES.get(name, "generation_failed")
    described = DESCRIPTIONS.get(name)
    return TaskError(code, f"{name}: {described}" if described else native_text(name, 64))


def native_name(body: Any) -> str | None:
    """`reason` first, then a string `code`, then a task's `err_code`."""
    if not isinstance(body, dict):
        return None
    for key in ("reason", "code", "err_code"):
        value = body.get(key)
        if isinstance(value, str) and value and not value.isdigit():
            return value
    return None


def _by_status(status: int) -> str:
    if status in (401, 403):
        return "upstream_auth_failed"
    if status == 402:
        return "insufficient_quota"
    if status == 404:
        return "task_expired"
    if status == 429:
        return "rate_limit_exceeded"
    if 400 <= status < 500:
        return "invalid_request"
    return "upstream_error"


def error_from(status: int, headers: Mapping[str, str], body: Any, raw: str = "") -> ProviderError:
    """The exception for an error answer (any HTTP status, or a 200 carrying an error body)."""
    name = native_name(body)
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, int) and not isinstance(code, bool) and status < 400:
        status = code  # an error inside a 200: its own code is the best status there is
    kind = CODES.get(name or "") or _by_status(status)
    native_message = body.get("message") if isinstance(body, dict) else None
    label = native_text(name, 64) or f"HTTP {status}"
    if native_text(native_message):
        message = f"{label}: {native_text(native_message)}"
    else:
        message = f"{label}: {DESCRIPTIONS.get(name or '', 'the upstream refused the request')}"
    detail = f"HTTP {status}: {raw[:500]}" if raw else f"HTTP {status}"
    return exception(kind, message, name=name, headers=headers, detail=detail)


def exception(
    kind: str,
    message: str,
    *,
    name: str | None,
    headers: Mapping[str, str] | None = None,
    detail: str | None = None,
) -> ProviderError:
    # a 499 Canceled, a 5xx: the request may have been read, but an error answer means no task
    return error_of(
        kind,
        message,
        detail=detail,
        retry_after=retry_after(headers or {}),
        param=_PARAMS.get(name or "") if kind == "invalid_request" else None,
    )


@dataclass(frozen=True)
class Accepted:
    task_id: str
    status: Status
    created_at: float | None


def parse_submit(body: Any) -> Accepted:
    """A 200 answer to a submit; a task that is already `failed` is a refused submit."""
    if not isinstance(body, dict):
        raise Unavailable("the upstream's answer to the submit was unreadable", maybe_created=True)
    task_id = body.get("task_id")
    state = body.get("state")
    if state == "failed":
        err = task_error(body.get("err_code"))
        kind = err.code if err.code != "generation_failed" else "invalid_request"
        raise exception(kind, err.message, name=body.get("err_code"), detail="submit state failed")
    if not isinstance(task_id, str | int) or isinstance(task_id, bool) or not str(task_id):
        if native_name(body):
            raise error_from(200, {}, body)
        raise Unavailable("the upstream accepted the submit without a task id", maybe_created=True)
    status = STATES.get(state) if isinstance(state, str) else None
    return Accepted(
        task_id=str(task_id),
        status=status if status in ("queued", "in_progress") else "queued",
        created_at=from_rfc3339(body.get("created_at")),
    )


def parse_query(body: Any, *, now: float, ttl_s: float) -> Update:
    """One query answer as an Update; an unknown state is `status=None` (keep the previous),
    named in `unknown_status` for the relay to note."""
    if not isinstance(body, dict):
        raise Unavailable("the upstream's task answer was unreadable")
    state = body.get("state")
    if state is None and native_name(body):
        raise error_from(200, {}, body)
    status = STATES.get(state) if isinstance(state, str) else None
    if status is None:
        return Update(status=None, unknown_status=str(state))
    if status == "queued":
        return Update(status="queued", progress=0)
    if status == "in_progress":
        reported = percent(body.get("progress")) if "progress" in body else None
        return Update(
            status="in_progress", progress=None if reported is None else max(1, min(95, reported))
        )
    if status == "failed":
        return Update(status="failed", error=task_error(body.get("err_code")), completed_at=now)
    creations = body.get("creations")
    first = creations[0] if isinstance(creations, list) and creations else {}
    first = first if isinstance(first, dict) else {}
    url = first.get("url") or body.get("result_url")
    if not isinstance(url, str) or not url:
        return Update(
            status="failed",
            error=TaskError("generation_failed", "success: the upstream listed no video"),
            completed_at=now,
        )
    cover = first.get("cover_url")
    return Update(
        status="completed",
        progress=100,
        completed_at=now,
        expires_at=now + ttl_s,
        state={"video_url": url, "cover_url": cover if isinstance(cover, str) and cover else None},
    )
