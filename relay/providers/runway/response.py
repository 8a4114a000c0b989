"""Runway's answers as pure functions (spec/providers/runway.md): a task object as an Update, a
FAILED task's `failureCode` as a normalised code, an HTTP error as the exception the policy
table knows.

Error bodies are `{"error": "<message>"}`; a validation failure adds Zod-style `issues[]` (only
`path` and `message` are read: the rest of their shape is unconfirmed) and a `docUrl`. The
`failure` text of a FAILED task is diagnostic, so it is only ever shown behind its code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from relay.providers.base import TaskError, Update
from relay.providers.errors import ProviderError, Unavailable, native_text
from relay.providers.normalize import (
    created_id,
    error_of,
    explain,
    from_rfc3339,
    moderation_words,
    retry_after,
)

ACTIVE = frozenset({"PENDING", "THROTTLED", "RUNNING"})
CANCELLED = TaskError("cancelled", "CANCELLED: the task was cancelled at runway")
VERSION_HEADER = "x-runway-version"
_MODERATION_WORDS = ("moderation", "flagged", "safety", "content polic")
# a native field a 400 names, as the client's own parameter
_PARAMS = {
    "promptText": "prompt",
    "promptImage": "input_reference",
    "referenceVideos": "input_reference",
    "referenceAudio": "input_reference",
    "videoUri": "video_id",
    "ratio": "size",
    "resolution": "size",
    "duration": "seconds",
    "seed": "seed",
    "negativePrompt": "negative_prompt",
    "audio": "generate_audio",
    "model": "model",
}
# only the one whose create was turned away before a task existed: any other 5xx, or a timeout,
# may have made a billed task (the page's submit-time caution)
_NOT_CREATED = (502, 503)


def task_id(body: Any, raw: str) -> str:
    """The id of a 2xx answer to a create (extra keys such as estimatedCost are ignored)."""
    return created_id(body.get("id") if isinstance(body, Mapping) else None, raw)


def classify(
    status: int, headers: Mapping[str, str], body: Any, raw: str, *, on_create: bool
) -> ProviderError:
    """The exception for an HTTP error answer, by the page's classification table."""
    message, field = _parts(body)
    lowered = message.lower()
    if status == 401 or (status == 400 and VERSION_HEADER in lowered):
        kind = "upstream_auth_failed"  # a refused version header is the relay's own fault
    elif "credit" in lowered and status in (400, 402, 429):
        kind = "insufficient_quota"  # 400 per the captures; 402 and 429 are also reported
    elif status == 403:
        kind = "upstream_auth_failed"
    elif status == 429:
        kind = "rate_limit_exceeded"
    elif status == 404 and not on_create:
        kind = "task_expired"
    elif 400 <= status < 500 and on_create and _moderated(body, field):
        kind = "moderation_blocked"
    elif 400 <= status < 500:
        kind = "invalid_request"
    else:
        kind = "upstream_error"
    text = message or f"HTTP {status}"
    if kind == "upstream_auth_failed" and VERSION_HEADER in lowered:
        text += " (check the channel's options.api_version)"
    param = None
    if kind in ("invalid_request", "moderation_blocked"):
        param = _PARAMS.get(field or "") or _param_in(message)
    return error_of(
        kind,
        explain(kind, text),
        detail=f"HTTP {status}: {raw}" if raw else f"HTTP {status}",
        retry_after=retry_after(headers),
        param=param,
        maybe_created=on_create and status >= 500 and status not in _NOT_CREATED,
    )


def _moderated(body: Any, field: str | None) -> bool:
    """A content-policy refusal says so in its `error`; a body validation failure (its
    `issues`) never is one, though a field such as contentModeration may name the word."""
    if field is not None or not isinstance(body, Mapping):
        return False
    error = body.get("error")
    if isinstance(error, Mapping):
        error = error.get("message")
    text = native_text(error).lower()
    return "validation of body failed" not in text and moderation_words(text, _MODERATION_WORDS)


def _parts(body: Any) -> tuple[str, str | None]:
    """(message, the native field the first issue names) of an error body."""
    if not isinstance(body, Mapping):
        return "", None
    error = body.get("error")
    if isinstance(error, Mapping):  # not Runway's shape, but a proxy's
        error = error.get("message")
    message = native_text(error)
    issues = body.get("issues")
    field = None
    if isinstance(issues, list) and issues and isinstance(issues[0], Mapping):
        first = issues[0]
        path = first.get("path")
        if isinstance(path, list) and path and isinstance(path[0], str):
            field = path[0]
        where = ".".join(str(p) for p in path) if isinstance(path, list) else ""
        said = native_text(first.get("message"))
        detail = f"{native_text(where, 60)}: {said}" if where and said else said
        if detail:
            message = f"{message}: {detail}" if message else detail
    return message, field


def _param_in(message: str) -> str | None:
    for field, param in _PARAMS.items():
        if re.search(rf"\b{field}\b", message):  # "ratio" is not in "moderation"
            return param
    if "asset" in message.lower():
        return "input_reference"
    return None


def failure_code(code: str, failure: str) -> str:
    """The normalised code of a FAILED task, from its failureCode's prefix (the third part only
    hints which input, and may name one that was not sent); without a code, from the words."""
    if code.startswith(("SAFETY.", "INPUT_PREPROCESSING.SAFETY.")):
        return "moderation_blocked"
    if code.startswith(("ASSET.", "INPUT_PREPROCESSING.")):
        return "invalid_request"
    if code.startswith("THIRD_PARTY.UNAVAILABLE"):
        return "upstream_error"  # ends the job: the relay does not resubmit on its own
    if not code and moderation_words(failure, _MODERATION_WORDS):
        return "moderation_blocked"
    return "generation_failed"  # INTERNAL.BAD_OUTPUT.*, any other code, none


def task_error(body: Mapping[str, Any]) -> TaskError:
    code = native_text(body.get("failureCode"), 64)
    failure = native_text(body.get("failure"))
    if code and failure:
        message = f"{code}: {failure}"
    else:
        message = code or f"FAILED: {failure or 'runway gave no reason'}"
    return TaskError(failure_code(code, failure), message)


def running_progress(value: Any) -> int | None:
    """Runway's 0-1 `progress` as a percentage clamped to 1-99; None when absent (the relay's
    time estimate then)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return max(1, min(99, round(value * 100)))


def update(body: Any, *, now: float, ttl_s: float, poll_after_s: float) -> Update:
    """One poll answer as an Update; an unknown status is `status=None` (keep the previous),
    named in `unknown_status` for the relay to note."""
    if not isinstance(body, Mapping) or not isinstance(body.get("status"), str):
        raise Unavailable("the upstream's answer to a poll was unreadable")
    status = body["status"]
    state: dict[str, Any] = {}
    created = from_rfc3339(body.get("createdAt"))
    if created is not None:
        state["upstream_created_at"] = created  # the video's created_at stays the relay's own
    wait = poll_after_s or None
    if status in ("PENDING", "THROTTLED"):
        # THROTTLED is a place in Runway's own queue, not an error; the job timeout still runs
        return Update(status="queued", progress=0, state=state, poll_after_s=wait)
    if status == "RUNNING":
        progress = running_progress(body.get("progress"))
        return Update(status="in_progress", progress=progress, state=state, poll_after_s=wait)
    cost = body.get("cost")
    credits = cost.get("credits") if isinstance(cost, Mapping) else None
    if isinstance(credits, int | float) and not isinstance(credits, bool):
        state["cost_credits"] = credits
    if status == "SUCCEEDED":
        output = body.get("output")
        url = output[0] if isinstance(output, list) and output else None
        if not isinstance(url, str) or not url:
            error = TaskError("generation_failed", "SUCCEEDED: runway listed no output")
            return Update(status="failed", error=error, completed_at=now, state=state)
        # a fresh signed URL on every poll: used as received, and re-polled when it lapses
        state.update(video_url=url, expires_at=now + ttl_s)
        return Update(
            status="completed",
            progress=100,
            completed_at=now,
            expires_at=now + ttl_s,
            state=state,
        )
    if status == "FAILED":
        return Update(status="failed", error=task_error(body), completed_at=now, state=state)
    if status == "CANCELLED":
        return Update(status="failed", error=CANCELLED, completed_at=now, state=state)
    return Update(status=None, unknown_status=status, poll_after_s=wait)
