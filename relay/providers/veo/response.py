"""The Gemini API's answers as pure functions (spec/providers/veo.md): Google's
`{"error": {code, message, status, details}}` to the error tree, and long-running operations to
Updates."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
from relay.providers.inline import INLINE_MAX_BYTES, encoded_size, too_large
from relay.providers.normalize import moderation_words, percent, retry_after

FILE_TTL_S = 2 * 24 * 3600  # generated files are deleted after 2 days

# google.rpc.Code: operation errors carry the number (1-16), HTTP bodies the name in `status`
GRPC_NAMES = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}
HTTP_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# a finished operation's error, by canonical name
OPERATION_CODES = {
    "CANCELLED": "cancelled",
    "UNKNOWN": "generation_failed",
    "INVALID_ARGUMENT": "invalid_request",
    "DEADLINE_EXCEEDED": "upstream_error",
    "NOT_FOUND": "invalid_request",  # an input it could not find: the operation itself exists
    "ALREADY_EXISTS": "invalid_request",
    "PERMISSION_DENIED": "upstream_auth_failed",
    "RESOURCE_EXHAUSTED": "rate_limit_exceeded",
    "FAILED_PRECONDITION": "invalid_request",
    "ABORTED": "upstream_error",
    "OUT_OF_RANGE": "invalid_request",
    "UNIMPLEMENTED": "invalid_request",
    "INTERNAL": "upstream_error",
    "UNAVAILABLE": "upstream_error",
    "DATA_LOSS": "upstream_error",
    "UNAUTHENTICATED": "upstream_auth_failed",
}
SAFETY_WORDS = (
    "safety",
    "responsible ai",
    "content policy",
    "usage guidelines",
    "prohibited",
    "harmful",
    "violat",
    "sensitive",
)
_BILLING = re.compile(r"\b(billing|plan|prepa(id|yment)|credits?|free tier)\b", re.IGNORECASE)
_PARAMS = (
    ("durationseconds", "seconds"),
    ("resolution", "size"),
    ("aspectratio", "size"),
    ("image", "input_reference"),
    ("lastframe", "input_reference"),
    ("model", "model"),
)


# --- Google's error envelope -----------------------------------------------------------------


@dataclass(frozen=True)
class GoogleError:
    name: str  # the canonical status name ("" when neither the body nor the status tells)
    message: str
    reasons: tuple[str, ...]  # ErrorInfo.reason values, e.g. API_KEY_INVALID
    retry_delay: float | None  # RetryInfo.retryDelay, in seconds

    @property
    def label(self) -> str:
        """`STATUS: message` as a client may read it (the message cleaned and capped)."""
        shown = native_text(self.message) or "the upstream gave no message"
        return f"{native_text(self.name, 64) or 'error'}: {shown}"

    def safety(self) -> bool:
        return moderation_words(self.message, SAFETY_WORDS)

    def billing(self) -> bool:
        return bool(_BILLING.search(self.message))


def google_error(error: Any, http_status: int = 0) -> GoogleError:
    """One `google.rpc.Status` (the `error` object); fields that are missing stay empty."""
    error = error if isinstance(error, Mapping) else {}
    code = error.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    name = error.get("status") if isinstance(error.get("status"), str) else ""
    if not name and code is not None:
        # operations carry gRPC numbers (1-16), HTTP bodies HTTP ones
        name = GRPC_NAMES.get(code) or HTTP_NAMES.get(code, "")
    if not name:
        name = HTTP_NAMES.get(http_status, "")
    message = error.get("message")
    reasons: list[str] = []
    delay = None
    details = error.get("details")
    for item in details if isinstance(details, list) else ():
        if not isinstance(item, Mapping):
            continue
        kind = str(item.get("@type", ""))
        if kind.endswith("google.rpc.ErrorInfo") and isinstance(item.get("reason"), str):
            reasons.append(item["reason"])
        elif kind.endswith("google.rpc.RetryInfo"):
            delay = duration(item.get("retryDelay"))
    text = message.strip()[:300] if isinstance(message, str) else ""
    return GoogleError(name, text, tuple(reasons), delay)


def duration(value: Any) -> float | None:
    """A protobuf Duration in JSON ("41s", "0.5s") or as {"seconds", "nanos"}."""
    if isinstance(value, str) and value.endswith("s"):
        try:
            seconds = float(value[:-1])
        except ValueError:
            return None
    elif isinstance(value, Mapping):
        try:
            seconds = float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
        except (TypeError, ValueError):
            return None
    else:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def classify(
    status: int, headers: Mapping[str, str], body: Any, raw: str = "", *, on_operation: bool
) -> ProviderError:
    """The exception for an error answer (any HTTP status, a 200 holding an envelope included).

    `on_operation`: the call named an operation or a file, so a 404 means it is gone; on a
    submit a 404 is an unknown model.
    """
    envelope = body.get("error") if isinstance(body, Mapping) else None
    err = google_error(envelope, status)
    if status < 400 and isinstance(envelope, Mapping):
        code = envelope.get("code")
        if isinstance(code, int) and not isinstance(code, bool) and code >= 400:
            status = code  # an error inside a 200: its own code is the best status there is
    name, message = err.name, err.label
    detail = f"HTTP {status}: {raw[:500]}" if raw else f"HTTP {status}"
    if (
        any(r.startswith("API_KEY_") for r in err.reasons)
        or status in (401, 403)
        or name in ("UNAUTHENTICATED", "PERMISSION_DENIED")
    ):
        return AuthFailed(message, detail=detail)  # a bad key is a 400, not a 401
    if status == 429 or name == "RESOURCE_EXHAUSTED":
        if err.retry_delay is not None:
            return RateLimited(message, retry_after=err.retry_delay, detail=detail)
        if err.billing():
            return QuotaExceeded(message, detail=detail)
        return RateLimited(message, retry_after=retry_after(headers), detail=detail)
    if status == 404 or name == "NOT_FOUND":
        if on_operation:
            return TaskNotFound(message, detail=detail)
        return Rejected(message, param="model", detail=detail)
    if status >= 500 or name in ("INTERNAL", "UNAVAILABLE", "DEADLINE_EXCEEDED", "UNKNOWN"):
        # a deadline may have passed after the job was made; a plain 5xx made nothing
        unsure = status == 504 or name == "DEADLINE_EXCEEDED"
        return Unavailable(message, maybe_created=unsure and not on_operation, detail=detail)
    if 400 <= status < 500 or name:
        if err.safety():
            return Rejected(message, moderation=True, detail=detail)
        return Rejected(message, param=_param(err.message), detail=detail)
    return Unavailable(message, detail=detail)


def _param(message: str) -> str | None:
    squashed = message.lower().replace("_", "")
    return next((param for word, param in _PARAMS if word in squashed), None)


# --- operations ------------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~/-]{0,511}$")


def operation_name(body: Any, raw: str = "") -> str:
    """The `name` of a just-started operation: the upstream id, polled as GET /v1beta/{name}."""
    name = body.get("name") if isinstance(body, Mapping) else None
    if isinstance(body, Mapping) and "error" in body and not name:
        raise classify(200, {}, body, raw, on_operation=False)
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name.split("/"):
        raise Unavailable(
            "the upstream accepted the job without a usable operation name",
            maybe_created=True,
            detail=f"HTTP 200: {raw[:500]}",
        )
    return name


def operation_error(error: Any) -> TaskError:
    err = google_error(error)
    code = OPERATION_CODES.get(err.name, "generation_failed")
    if err.name == "INVALID_ARGUMENT" and err.safety():
        code = "moderation_blocked"
    elif err.name == "RESOURCE_EXHAUSTED" and err.billing():
        code = "insufficient_quota"
    return TaskError(code, err.label)


def operation_update(body: Any, *, now: float, raw: str = "") -> Update:
    """One poll's operation; `done` left out (or false) is still running."""
    if not isinstance(body, Mapping):
        raise Unavailable("the upstream's operation answer was unreadable", detail=raw[:500])
    error = body.get("error")
    done = body.get("done")
    if isinstance(error, Mapping) and "name" not in body and done is None:
        raise classify(200, {}, body, raw, on_operation=True)
    if done is not True:
        if done not in (None, False):
            return Update(status=None, unknown_status=f"done={done!r}")
        return Update(status="in_progress", progress=_progress(body.get("metadata")))
    if isinstance(error, Mapping):
        return Update(status="failed", error=operation_error(error), completed_at=now)
    return _finished(body.get("response"), now)


def _result(response: Any) -> Mapping[str, Any]:
    response = response if isinstance(response, Mapping) else {}
    # the Gemini API nests the result; Vertex puts the RAI fields on `response` itself
    result = response.get("generateVideoResponse", response)
    return result if isinstance(result, Mapping) else {}


def _first_video(result: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The `video` of the first sample that has one, by file URI or inline."""
    samples = result.get("generatedSamples")  # never `generatedVideos`: not the wire name
    for sample in samples if isinstance(samples, list) else ():
        video = sample.get("video") if isinstance(sample, Mapping) else None
        if not isinstance(video, Mapping):
            continue
        uri, encoded = video.get("uri"), video.get("encodedVideo")
        if (isinstance(uri, str) and uri) or (isinstance(encoded, str) and encoded):
            return video
    return None


def inline_video(body: Any) -> tuple[str, str | None] | None:
    """The base64 and its `encoding` when a finished operation's result came inline."""
    response = body.get("response") if isinstance(body, Mapping) else None
    video = _first_video(_result(response))
    if video is None or (isinstance(video.get("uri"), str) and video["uri"]):
        return None
    encoding = video.get("encoding")
    return video["encodedVideo"], encoding if isinstance(encoding, str) else None


def _finished(response: Any, now: float) -> Update:
    result = _result(response)
    video = _first_video(result)
    if video is not None:
        uri = video.get("uri")
        if isinstance(uri, str) and uri:
            state = {"video_uri": uri, "inline_video": False}
        elif encoded_size(video["encodedVideo"]) > INLINE_MAX_BYTES:
            return Update(
                status="failed",
                error=TaskError("generation_failed", too_large("veo")),
                completed_at=now,
            )
        else:
            # only the flag: VeoProvider.content reads the operation again for the bytes
            state = {"video_uri": None, "inline_video": True}
        return Update(
            status="completed",
            progress=100,
            completed_at=now,
            expires_at=now + FILE_TTL_S,
            state=state,
        )
    count = result.get("raiMediaFilteredCount")
    listed = result.get("raiMediaFilteredReasons")
    listed = listed if isinstance(listed, list) else []
    reasons = [shown for r in listed if (shown := native_text(r))]
    if (isinstance(count, int) and count > 0) or reasons:
        message = "; ".join(reasons) or "the video was blocked by the upstream's safety filters"
        return Update(
            status="failed", error=TaskError("moderation_blocked", message), completed_at=now
        )
    return Update(
        status="failed",
        error=TaskError("generation_failed", "upstream produced no video"),
        completed_at=now,
    )


def _progress(metadata: Any) -> int | None:
    """Whether a running operation ever reports progress is unconfirmed: used when it does."""
    if not isinstance(metadata, Mapping):
        return None
    for key in ("progressPercent", "progress"):
        value = percent(metadata.get(key)) if key in metadata else None
        if value is not None:
            return max(1, min(95, value))
    return None
