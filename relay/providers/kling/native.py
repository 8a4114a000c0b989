"""Pure translation between the relay's jobs and Kling's native JSON (spec/providers/kling.md).

Nothing here does I/O, so every rule is tested on the page's recorded bodies.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.providers.base import (
    AuthFailed,
    Image,
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
    now,
)
from relay.providers.normalize import (
    from_millis,
    merge_metadata,
    moderation_words,
    retry_after,
    snap_ratio,
    snap_seconds,
    tier,
    whole_seconds,
)
from relay.upstream import Reply

log = logging.getLogger("relay.providers.kling")

RESULT_TTL_S = 30 * 86400.0  # Kling deletes the asset 30 days after it was generated
MAX_PROMPT = 2500
RATIOS = ("16:9", "9:16", "1:1")
MODES = ("std", "pro")
TEXT2VIDEO, IMAGE2VIDEO = "text2video", "image2video"

IMAGE_ONLY_MODELS = frozenset({"kling-v1-5", "kling-v2-1"})
# (std tier, pro tier); None where the model has no such mode. The v2-6 and v3 rows are
# unconfirmed, and a model the table does not know yet is assumed to look like them.
_TIERS: Mapping[str, tuple[str | None, str | None]] = {
    "kling-v1": ("720p", "720p"),
    "kling-v1-5": ("720p", "1080p"),
    "kling-v1-6": ("720p", "1080p"),
    "kling-v2-1": ("720p", "1080p"),
    "kling-v2-master": ("720p", None),
    "kling-v2-1-master": (None, "1080p"),
    "kling-v2-5-turbo": (None, "1080p"),
    "kling-v2-6": ("720p", "1080p"),
    "kling-v3": ("720p", "1080p"),
}
_DEFAULT_TIERS = ("720p", "1080p")
_PIXELS = {
    "720p": {"16:9": "1280x720", "9:16": "720x1280", "1:1": "720x720"},
    "1080p": {"16:9": "1920x1080", "9:16": "1080x1920", "1:1": "1080x1080"},
}
_VERSION = re.compile(r"^kling-v(\d+)(?:-(\d+))?(?:-|$)")

_STATUSES: Mapping[str, Status] = {
    "submitted": "queued",
    "processing": "in_progress",
    "succeed": "completed",
    "failed": "failed",
}
MODERATION_WORDS = ("risk", "safety", "security", "sensitive", "policy")
_unknown_seen: set[str] = set()

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


# --- models -------------------------------------------------------------------------------


def version(model: str) -> tuple[int, int]:
    """(2, 6) for kling-v2-6, (3, 0) for kling-v3; (0, 0) for a name of another shape."""
    match = _VERSION.match(model)
    if match is None:
        return (0, 0)
    return int(match.group(1)), int(match.group(2) or 0)


def durations(model: str) -> range | tuple[int, ...]:
    return range(3, 16) if version(model) >= (3, 0) else (5, 10)


def has_sound(model: str) -> bool:
    return version(model) >= (2, 6)


def choose_mode(model: str, size: Size, default: str) -> str:
    """pro when the client asked for 1080p and the model has it; the channel's mode otherwise.

    A model with a single mode always gets that mode, whatever the channel's default.
    """
    std, pro = _TIERS.get(model, _DEFAULT_TIERS)
    if tier(size) in ("1080p", "4k") and pro == "1080p":
        return "pro"
    if default == "pro" and pro is None:
        return "std"
    if default == "std" and std is None:
        return "pro"
    return default


def pixel_size(model: str, mode: str, ratio: str) -> str:
    std, pro = _TIERS.get(model, _DEFAULT_TIERS)
    level = (pro if mode == "pro" else std) or std or pro or "720p"
    return _PIXELS[level][ratio]


# --- create -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NativeRequest:
    family: str
    body: dict[str, Any]
    seconds: str  # what was sent, as a whole-number string
    size: str  # the WxH that model, mode and ratio produce


def build_request(job: Job, default_mode: str) -> NativeRequest:
    """The create body and the family path it goes to; raises Rejected for what Kling refuses."""
    for name, text in (("prompt", job.prompt), ("negative_prompt", job.negative_prompt or "")):
        if len(text) > MAX_PROMPT:
            raise Rejected(f"{name}: Kling accepts at most {MAX_PROMPT} characters", param=name)
    model = job.model
    seconds = snap_seconds(job.seconds, durations(model))
    body: dict[str, Any] = {
        "model_name": model,
        "prompt": job.prompt,
        "mode": choose_mode(model, job.size, default_mode),
        "duration": str(seconds),
    }
    if job.negative_prompt:
        body["negative_prompt"] = job.negative_prompt
    if job.generate_audio is not None and has_sound(model):
        body["sound"] = "on" if job.generate_audio else "off"
    first, last = split_images(job.images)
    if first is not None:
        body["image"] = image_value(first)
    if last is not None:
        body["image_tail"] = image_value(last)
    _log_dropped(job)
    body = merge_metadata(body, job.metadata)
    for key in ("image", "image_tail"):
        if isinstance(body.get(key), str):
            body[key] = strip_data_prefix(body[key])
    family = IMAGE2VIDEO if body.get("image") or body.get("image_tail") else TEXT2VIDEO
    ratio = snap_ratio(job.size, RATIOS)
    if family == TEXT2VIDEO:
        body.setdefault("aspect_ratio", ratio)
        if body["aspect_ratio"] in RATIOS:
            ratio = body["aspect_ratio"]
    if "image_tail" in body and {"camera_control", "static_mask", "dynamic_masks"} & set(body):
        raise Rejected(
            "a last frame (image_tail) cannot be combined with camera_control or motion masks",
            param="metadata",
        )
    mode = body["mode"] if body.get("mode") in MODES else "std"
    return NativeRequest(
        family=family,
        body=body,
        seconds=whole_seconds(body.get("duration")) or str(seconds),
        size=pixel_size(model, mode, ratio),
    )


def split_images(images: tuple[Image, ...]) -> tuple[Image | None, Image | None]:
    """The first frame and the last frame: a second unlabelled image counts as the last."""
    first: Image | None = None
    last: Image | None = None
    for image in images:
        if image.role == "last_frame" or (image.role in (None, "first_frame") and first):
            last = last or image
        elif image.role in (None, "first_frame"):
            first = image
    return first, last


def image_value(image: Image) -> str:
    return image.url if image.url is not None else image.base64()


def strip_data_prefix(value: str) -> str:
    """Kling wants raw base64: a `data:...;base64,` prefix makes it refuse the image."""
    if value.startswith("data:") and ";base64," in value:
        return value.split(";base64,", 1)[1]
    return value


def _log_dropped(job: Job) -> None:
    dropped = [
        name
        for name, value in (
            ("seed", job.seed),
            ("enhance_prompt", job.enhance_prompt),
            ("person_generation", job.person_generation),
            ("generate_audio", None if has_sound(job.model) else job.generate_audio),
        )
        if value is not None
    ]
    if dropped:
        log.debug("kling %s has no field for %s: dropped", job.model, ", ".join(dropped))


# --- query --------------------------------------------------------------------------------


def parse_task(data: Mapping[str, Any]) -> Update:
    """One query's `data` object as an Update."""
    native = data.get("task_status")
    status = _STATUSES.get(native) if isinstance(native, str) else None
    if status is None:
        if str(native) not in _unknown_seen:
            _unknown_seen.add(str(native))
            log.info("kling: unknown task_status %r, keeping the previous status", native)
        return Update(status=None)
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
    message = reason.strip() or "the Kling task failed without a reason"
    code = (
        "moderation_blocked"
        if moderation_words(message, MODERATION_WORDS)
        else ("generation_failed")
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
    message = f"{code}: {native}" if code is not None else f"Kling answered HTTP {status}"
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
