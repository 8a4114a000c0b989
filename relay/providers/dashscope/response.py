"""DashScope answers in relay terms: task records to Updates, `{request_id, code, message}`
error bodies to the error tree (pure functions).

A task the upstream does not know answers HTTP 200 with `task_status: UNKNOWN`, both for a moment
right after its create and for good once its 24 h record is gone: it is raised as TaskNotFound,
and the adapter's PollRules give the relay a grace window for the first case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.domain import Size
from relay.providers.base import TaskError, Update
from relay.providers.dashscope.models import (
    RESULT_TTL_S,
    TIER_SIZES,
    parse_wh,
    snap_size,
    tier_of_short_side,
)
from relay.providers.errors import ProviderError, TaskNotFound, native_text
from relay.providers.normalize import (
    error_of,
    explain,
    from_local_time,
    moderation_words,
    retry_after,
    url_expiry,
    whole_seconds,
)

# Words of a moderation refusal, for codes this table does not know.
MODERATION_WORDS = ("inappropriate", "data inspection", "sensitive", "infringement")


# --- native codes -----------------------------------------------------------------------------


def code_class(code: str) -> str | None:
    """The normalized error code a native `code` names, or None when it names none."""
    if code == "InvalidApiKey" or code.startswith(("AccessDenied", "Model.AccessDenied")):
        return "upstream_auth_failed"
    if code == "Arrearage":
        return "insufficient_quota"
    if code.startswith("Throttling"):
        return "rate_limit_exceeded"
    if "DataInspection" in code or code == "IPInfringementSuspect":
        return "moderation_blocked"
    if code.startswith(("InvalidParameter", "BadRequest", "InvalidURL", "ModelNotFound")):
        return "invalid_request"
    if code == "InternalError.Algo.InvalidParameter":
        return "invalid_request"  # an input the model could not use, not an outage
    if code.startswith("InternalError"):
        return "upstream_error"
    return None


def native_error(body: Any) -> tuple[str, str] | None:
    """(code, message) of a top-level error body, or None."""
    if not isinstance(body, Mapping):
        return None
    code = body.get("code")
    if not isinstance(code, str) or not code:
        return None
    message = body.get("message")
    return code, message if isinstance(message, str) else ""


def classify(
    status: int, headers: Mapping[str, str], body: Any, raw: str, *, creating: bool
) -> ProviderError:
    """The exception for an error answer (any HTTP status, a 200 carrying an error body too)."""
    found = native_error(body)
    code, message = found or ("", "")
    shown = native_text(message)
    text = f"{native_text(code, 64)}: {shown}" if code else f"HTTP {status}"
    detail = f"HTTP {status}: {raw}"
    kind = code_class(code) if code else None
    if kind is None and code and moderation_words(message, MODERATION_WORDS):
        kind = "moderation_blocked"
    if kind is None:
        kind = _by_status(status)
    # a gateway timeout may have let the create through; any other failure answer did not
    return error_of(
        kind,
        explain(kind, text),
        detail=detail,
        retry_after=retry_after(headers),
        param="input_reference" if code == "InvalidURL" else None,
        maybe_created=creating and status == 504,
    )


def _by_status(status: int) -> str:
    if status in (401, 403):
        return "upstream_auth_failed"
    if status == 429:
        return "rate_limit_exceeded"
    if 400 <= status < 500:
        return "invalid_request"
    return "upstream_error"


# --- task records -----------------------------------------------------------------------------


def task_update(
    body: Mapping[str, Any],
    *,
    seen_at: float,
    utc_offset_hours: float,
    requested_size: str,
) -> Update:
    """One `GET /api/v1/tasks/{id}` answer as an Update; UNKNOWN raises TaskNotFound."""
    output = body.get("output")
    output = output if isinstance(output, Mapping) else {}
    status = output.get("task_status")
    ended = from_local_time(output.get("end_time"), utc_offset_hours)
    if status == "PENDING":
        return Update(status="queued", progress=0)
    if status == "RUNNING":
        return Update(status="in_progress")
    if status == "SUCCEEDED":
        return _succeeded(output, body.get("usage"), ended or seen_at, seen_at, requested_size)
    if status == "FAILED":
        return Update(status="failed", error=task_error(output), completed_at=ended)
    if status == "CANCELED":
        return Update(
            status="failed",
            error=TaskError("cancelled", "CANCELED: the task was cancelled upstream"),
            completed_at=ended,
        )
    if status == "UNKNOWN":  # not visible to queries yet, or gone: PollRules tell them apart
        raise TaskNotFound("UNKNOWN: DashScope no longer knows this task (its record lasts 24 h)")
    return Update(status=None, unknown_status=str(status))


def _succeeded(
    output: Mapping[str, Any], usage: Any, completed_at: float, seen_at: float, requested: str
) -> Update:
    url = output.get("video_url")
    if not isinstance(url, str) or not url:
        return Update(
            status="failed",
            error=TaskError("generation_failed", "SUCCEEDED: the task has no output.video_url"),
            completed_at=completed_at,
        )
    expires = url_expiry(url) or seen_at + RESULT_TTL_S
    usage = usage if isinstance(usage, Mapping) else {}
    return Update(
        status="completed",
        progress=100,
        seconds=produced_seconds(usage),
        size=produced_size(usage, requested),
        completed_at=completed_at,
        expires_at=expires,
        state={"video_url": url, "expires_at": expires},
    )


def task_error(output: Mapping[str, Any]) -> TaskError:
    code, message = output.get("code"), output.get("message")
    code = code if isinstance(code, str) else ""
    message = message if isinstance(message, str) else ""
    shown = native_text(message)
    if not code:
        return TaskError("generation_failed", f"FAILED: {shown or 'the upstream gave no reason'}")
    kind = code_class(code)
    if kind is None:
        moderated = moderation_words(message, MODERATION_WORDS)
        kind = "moderation_blocked" if moderated else "generation_failed"
    code = native_text(code, 64)
    return TaskError(kind, f"{code}: {shown}" if shown else code)


def produced_seconds(usage: Mapping[str, Any]) -> str | None:
    """The output length from whichever usage field this model reports (numbers, strings or
    floats): 2.6 `output_video_duration`, 2.5-and-older t2v `video_duration`, i2v `duration`."""
    for key in ("output_video_duration", "video_duration", "duration"):
        found = whole_seconds(usage.get(key))
        if found is not None:
            return found
    return None


def produced_size(usage: Mapping[str, Any], requested: str) -> str | None:
    """`usage.size` / `usage.video_ratio` ("1280*720"), else the `SR` tier in `usage.ratio`
    ("16:9", which Wan 2.7/3.0 may report) or the requested aspect (i2v reports only the tier);
    None: keep what was requested."""
    for key in ("size", "video_ratio"):
        found = parse_wh(usage.get(key))
        if found is not None:
            return f"{found[0]}x{found[1]}"
    asked = Size.parse(requested)
    short = whole_seconds(usage.get("SR"))  # a positive whole number, whatever its type
    tier = tier_of_short_side(int(short)) if short else None
    ratio = usage.get("ratio")
    shape = Size.parse(ratio) if isinstance(ratio, str) and ":" in ratio else None
    if asked is None or (tier is None and shape is None):
        return None
    tier = tier or _tier_of(asked)
    if tier is None:
        return None
    width, height = snap_size(shape or asked, tier)
    return f"{width}x{height}"


def _tier_of(size: Size) -> str | None:
    """The tier whose sizes include this one (the 720P square is 960 px a side)."""
    pair = (size.width, size.height)
    return next((name for name, sizes in TIER_SIZES.items() if pair in sizes), None)
