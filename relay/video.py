"""The OpenAI wire format: a create or remix request from its fields, and a task as a video.

`web.forms.read_body` turns the HTTP body into plain fields first; `parse_create` and
`parse_remix` are pure functions from those fields to one `VideoRequest`, and every 400 names its
field. What the client left out stays None: the use case fills in the defaults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from relay.domain import HINTS, Image, Media, Size, Task, VideoRequest
from relay.errors import InvalidRequest
from relay.references import image_from_string, input_reference

MAX_PROMPT = 32000
MAX_SECONDS = 120
MAX_SIDE = 8192

FOREIGN_FIELDS = {
    "aspect_ratio": "size",
    "resolution": "size",
    "duration": "seconds",
    "duration_seconds": "seconds",
    "content": "input_reference.content",
    "img_url": "image (or input_reference.image_url)",
    "images": "input_reference.content",
}
IGNORED_FIELDS = frozenset({"task_id", "video_id"})
CREATE_FIELDS = frozenset(
    {
        "prompt",
        "model",
        "seconds",
        "size",
        "input_reference",
        "image",
        "remix_video_id",
        "metadata",
        *HINTS,
    }
)
REMIX_FIELDS = frozenset({"prompt", "model", "seconds", "size", "metadata"})

_DIGITS = re.compile(r"[0-9]{1,6}")
_SIZE = re.compile(r"([0-9]{1,6})\s*([xX:])\s*([0-9]{1,6})")


# --- what the body carried ---------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """An uploaded file (multipart), its type sniffed from its bytes."""

    data: bytes = field(repr=False)
    mime: str
    filename: str | None


# --- parsing fields ---------------------------------------------------------------------------


class _Fields:
    """Typed access to a request's fields; multipart values arrive as strings."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    def string(self, key: str, *, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise InvalidRequest(f"{key} is required", code="missing_parameter", param=key)
            return None
        if not isinstance(value, str):
            raise InvalidRequest(f"{key} must be a string", param=key)
        if "\x00" in value:  # no upstream wants one, and PostgreSQL text cannot hold it
            raise InvalidRequest(f"{key} must not contain NUL characters (U+0000)", param=key)
        return value

    def integer(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,20}", value.strip()):
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise InvalidRequest(f"{key} must be an integer", param=key)

    def boolean(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        raise InvalidRequest(f"{key} must be true or false", param=key)


def _check_names(
    data: Mapping[str, Any], allowed: frozenset[str], *, foreign: Mapping[str, str]
) -> None:
    for key in data:
        if key in allowed or key in IGNORED_FIELDS:
            continue
        if key in foreign:
            raise InvalidRequest(
                f"{key} is not a field of this API: use {foreign[key]}",
                code="unsupported_parameter",
                param=key,
            )
        raise InvalidRequest(
            f"unknown field {key!r}: put vendor fields in metadata",
            code="unknown_parameter",
            param=key,
        )


def _prompt(fields: _Fields) -> str:
    prompt = fields.string("prompt", required=True)
    assert prompt is not None
    if not prompt.strip():
        raise InvalidRequest("prompt must not be empty", code="missing_parameter", param="prompt")
    if len(prompt) > MAX_PROMPT:
        raise InvalidRequest(f"prompt is longer than {MAX_PROMPT} characters", param="prompt")
    return prompt


def _seconds(fields: _Fields) -> int | None:
    value = fields.data.get("seconds")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _DIGITS.fullmatch(value.strip()):
        raise InvalidRequest('seconds must be a whole number of seconds, like "4"', param="seconds")
    seconds = int(value)
    if not 1 <= seconds <= MAX_SECONDS:
        raise InvalidRequest(f"seconds must be between 1 and {MAX_SECONDS}", param="seconds")
    return seconds


def _size(fields: _Fields) -> Size | None:
    value = fields.data.get("size")
    if value is None:
        return None
    size = None
    # matched here rather than by Size.parse, which lets non-ASCII digits reach int()
    found = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
    if found is not None:
        a, sep, b = int(found[1]), found[2], int(found[3])
        if a > 0 and b > 0:
            size = Size(ratio=(a, b)) if sep == ":" else Size(width=a, height=b)
    if (
        size is None
        or max(size.width or 0, size.height or 0) > MAX_SIDE
        or (size.ratio is not None and max(size.ratio) > 100)
    ):
        raise InvalidRequest(
            'size must be WIDTHxHEIGHT (like "1280x720") or a ratio (like "16:9")', param="size"
        )
    return size


def _metadata(fields: _Fields) -> dict[str, Any]:
    value = fields.data.get("metadata")
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = orjson.loads(value) if value.strip() else {}
        except orjson.JSONDecodeError:
            raise InvalidRequest("metadata must be a JSON object", param="metadata") from None
    if not isinstance(value, dict):
        raise InvalidRequest("metadata must be an object", param="metadata")
    return value


def _hints(fields: _Fields) -> dict[str, Any]:
    hints: dict[str, Any] = {
        "negative_prompt": fields.string("negative_prompt"),
        "seed": fields.integer("seed"),
        "generate_audio": fields.boolean("generate_audio"),
        "enhance_prompt": fields.boolean("enhance_prompt"),
        "person_generation": fields.string("person_generation"),
    }
    seed = hints["seed"]
    if seed is not None and not -1 <= seed <= 2**32 - 1:
        raise InvalidRequest("seed must be between -1 and 4294967295", param="seed")
    return hints


def parse_create(
    data: Mapping[str, Any], upload: Upload | None, *, max_upload: int, max_media: int | None = None
) -> VideoRequest:
    """A create request from its fields; raises InvalidRequest naming the field."""
    _check_names(data, CREATE_FIELDS, foreign=FOREIGN_FIELDS)
    data = {k: v for k, v in data.items() if v is not None}  # JSON null: as if not sent
    fields = _Fields(data)
    prompt = _prompt(fields)
    model = _model(fields)
    images: list[Image] = []
    media: list[Media] = []
    if upload is not None:
        if "input_reference" in data:
            raise InvalidRequest(
                "send input_reference as a file or as fields, not both", param="input_reference"
            )
        images.append(Image(data=upload.data, mime=upload.mime))
    elif "input_reference" in data:
        images, media = input_reference(data["input_reference"], max_upload, max_media)
    if "image" in data:
        if images or media:
            raise InvalidRequest(
                "give the image once: image or input_reference, not both", param="image"
            )
        images.append(image_from_string(data["image"], "image", None, max_upload))
    remix_id = fields.string("remix_video_id")
    if remix_id is not None:
        if not remix_id.strip():
            raise InvalidRequest("remix_video_id must not be empty", param="remix_video_id")
        if upload is not None:
            raise InvalidRequest(
                "remix_video_id cannot be combined with an uploaded input_reference file",
                param="remix_video_id",
            )
        if images or media:  # a remix starts from its source video: an image would be dropped
            raise InvalidRequest(
                "remix_video_id cannot be combined with input_reference or image",
                param="remix_video_id",
            )
    return VideoRequest(
        prompt=prompt,
        model=model,
        seconds=_seconds(fields),
        size=_size(fields),
        images=tuple(images),
        media=tuple(media),
        metadata=_metadata(fields),
        remix_of=remix_id.strip() if remix_id is not None else None,
        **_hints(fields),
    )


def _model(fields: _Fields) -> str | None:
    model = fields.string("model")
    if model is not None and not model.strip():
        raise InvalidRequest("model must not be empty", param="model")
    return model.strip() if model is not None else None


def parse_remix(data: Mapping[str, Any]) -> VideoRequest:
    for key in data:
        if key in CREATE_FIELDS and key not in REMIX_FIELDS:
            raise InvalidRequest(
                f"{key} is not a remix field: a remix takes prompt, model, seconds, size and "
                "metadata, and starts from its source video",
                code="unknown_parameter",
                param=key,
            )
    _check_names(data, REMIX_FIELDS, foreign=FOREIGN_FIELDS)
    data = {k: v for k, v in data.items() if v is not None}
    fields = _Fields(data)
    return VideoRequest(
        prompt=_prompt(fields),
        model=_model(fields),
        seconds=_seconds(fields),
        size=_size(fields),
        metadata=_metadata(fields),
    )


# --- rendering --------------------------------------------------------------------------------


def render(task: Task, public_url: str) -> dict[str, Any]:
    """The OpenAI video object; every key present, nullable ones null."""
    done = task.status == "completed"
    url = f"{public_url}/v1/videos/{task.id}/content" if done else None
    error = None
    if task.status == "failed":
        error = {
            "code": task.error_code or "generation_failed",
            "message": task.error_message or "the video could not be generated",
        }
    return {
        "id": task.id,
        "object": "video",
        "model": task.model,
        "status": task.status,
        "progress": 100 if done else max(0, min(100, task.progress)),
        "created_at": task.created_at,
        "completed_at": _int(task.completed_at),
        "expires_at": _int(task.expires_at) if done else None,
        "prompt": task.prompt,
        "size": task.size,
        "seconds": task.seconds,
        "quality": "standard",
        "remixed_from_video_id": task.remixed_from,
        "error": error,
        "task_id": task.id,
        "video_url": url,
        "url": url,
    }


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)
