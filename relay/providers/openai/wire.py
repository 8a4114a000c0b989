"""The OpenAI Videos API wire format as pure functions (spec/providers/openai.md).

Requests: the create body as JSON, or as multipart fields plus one file part. Answers: the video
object to an Update, and error envelopes to the adapter error tree. Nothing here does I/O, so
every rule is tested on the page's recorded bodies.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from relay.providers.base import (
    AuthFailed,
    Job,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    Rejected,
    Size,
    Status,
    TaskError,
    TaskNotFound,
    Unavailable,
    Update,
)
from relay.providers.normalize import (
    merge_metadata,
    moderation_words,
    percent,
    retry_after,
    snap_ratio,
    snap_seconds,
    unix_seconds,
    whole_seconds,
)

log = logging.getLogger("relay.providers.openai")

Phase = Literal["create", "remix", "poll", "content", "delete"]
CREATING: frozenset[Phase] = frozenset({"create", "remix"})

# Sora's own durations; 16 and 20 are newer than the docs most clients were written against.
SORA_SECONDS = (4, 8, 12, 16, 20)
# A bare ratio carries no tier, so it takes the default 720p size of its shape.
RATIO_SIZES = {"9:16": "720x1280", "16:9": "1280x720"}
IMAGE_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
HINTS = ("negative_prompt", "seed", "generate_audio", "enhance_prompt", "person_generation")

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
MODERATION_WORDS = ("moderation", "content policy", "content_policy", "safety system")
MODERATION_CODE_WORDS = ("moderation", "content_policy", "safety")
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_*\-]{6,}")
_WXH = re.compile(r"^\d{2,5}x\d{2,5}$")

_unknown_seen: set[tuple[str, str]] = set()


def note_unknown(provider: str, word: str) -> None:
    """Log each unknown native status once per process: it is news the first time only."""
    if (provider, word) not in _unknown_seen:
        _unknown_seen.add((provider, word))
        log.info("%s: unknown upstream status %r; keeping the previous status", provider, word)


# --- requests ---------------------------------------------------------------------------------


def pixel_size(size: Size) -> str:
    """WxH passes through (upstream decides what it accepts); a ratio becomes its 720p size."""
    if size.width and size.height:
        return f"{size.width}x{size.height}"
    return RATIO_SIZES[snap_ratio(size, tuple(RATIO_SIZES))]


def upstream_seconds(seconds: int, model: str) -> int:
    """Sora models snap to their durations; another server's own models get the value as asked."""
    if model.startswith("sora-"):
        return snap_seconds(seconds, SORA_SECONDS)
    return seconds


def dropped_hints(job: Job) -> list[str]:
    return [name for name in HINTS if getattr(job, name) is not None]


def create_fields(job: Job, seconds: int, size: str) -> dict[str, Any]:
    """The create fields, JSON-typed as upstream wants them (`seconds` is a string)."""
    return {"model": job.model, "prompt": job.prompt, "seconds": str(seconds), "size": size}


def json_create(job: Job, seconds: int, size: str) -> dict[str, Any]:
    body = create_fields(job, seconds, size)
    if job.images:
        body["input_reference"] = {"image_url": job.images[0].url_or_data_url()}
    return merge_metadata(body, job.metadata)


@dataclass(frozen=True)
class FilePart:
    name: str
    data: bytes
    filename: str
    content_type: str


def image_part(data: bytes, mime: str) -> FilePart:
    """The image as a file part; `mime` was sniffed from the bytes (never octet-stream)."""
    return FilePart("input_reference", data, f"input_reference.{IMAGE_EXTENSIONS[mime]}", mime)


def form_create(job: Job, seconds: int, size: str, has_file: bool) -> list[tuple[str, str]]:
    """Multipart text fields; metadata joins them in bracket notation (`characters[][id]`)."""
    body = merge_metadata(create_fields(job, seconds, size), job.metadata)
    if has_file:
        body.pop("input_reference", None)  # the file part is the input_reference
    return form_fields(body)


def form_fields(value: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, item in value.items():
        pairs += _form_value(f"{prefix}[{key}]" if prefix else str(key), item)
    return pairs


def _form_value(name: str, item: Any) -> list[tuple[str, str]]:
    if item is None:
        return []
    if isinstance(item, Mapping):
        return form_fields(item, name)
    if isinstance(item, list | tuple):
        return [pair for element in item for pair in _form_value(f"{name}[]", element)]
    if isinstance(item, bool):
        return [(name, "true" if item else "false")]
    return [(name, str(item))]


# --- answers ----------------------------------------------------------------------------------


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
    if status is None:
        note_unknown("openai", str(word))
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
    )


def video_failure(word: str, error: Any) -> TaskError:
    native = native_error({"error": error}) if error else Native()
    code = ENDED_CODES.get(word, "generation_failed")
    if is_moderation(native.code, native.message):
        code = "moderation_blocked"
    return TaskError(code, native.text() or f"the upstream video {word}")


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
        if self.code and self.message and self.code != self.message:
            return f"{self.code}: {self.message}"
        return self.message or self.code


def native_error(body: Any) -> Native:
    if not isinstance(body, Mapping):
        return Native()
    inner = body.get("error")
    if isinstance(inner, str):
        return Native(message=inner)
    source = inner if isinstance(inner, Mapping) else body
    param = source.get("param")
    return Native(
        code=text_of(source.get("code")),
        message=text_of(source.get("message")),
        type=text_of(source.get("type")),
        param=param if isinstance(param, str) and param else None,
    )


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
