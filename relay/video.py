"""The OpenAI wire format: read a create request (JSON or multipart), render a task.

Reading is in two steps. `read_body` turns the HTTP body into plain fields (multipart bracket
names unflattened, at most one uploaded file, limits enforced while reading). `parse_create` and
`parse_remix` are pure functions from fields to a validated request; every 400 names its field.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from aiohttp import BodyPartReader, web

from relay.config import Defaults
from relay.errors import InvalidRequest, RequestTooLarge, UnsupportedMediaType
from relay.providers.base import Image, Media, Size
from relay.store import TaskRow

MAX_PROMPT = 32000
MAX_SECONDS = 120
MAX_SIDE = 8192
MULTIPART_OVERHEAD = 1024 * 1024  # the text around an image: prompt (<= 128 KiB), metadata

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
HINT_FIELDS = ("negative_prompt", "seed", "generate_audio", "enhance_prompt", "person_generation")
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
        *HINT_FIELDS,
    }
)
REMIX_FIELDS = frozenset({"prompt", "model", "seconds", "size", "metadata"})
IMAGE_ROLES = frozenset({"first_frame", "last_frame", "reference_image"})
MEDIA_ROLES = {"video": "reference_video", "audio": "reference_audio"}
_ROLE_TYPES = {
    **dict.fromkeys(IMAGE_ROLES, "image_url"),
    "reference_video": "video_url",
    "reference_audio": "audio_url",
}

_DIGITS = re.compile(r"[0-9]{1,6}")
_SIZE = re.compile(r"([0-9]{1,6})\s*([xX:])\s*([0-9]{1,6})")
MAX_FORM_INDEX = 1000  # a[5000][b] would otherwise allocate the list up to it

_BRACKETS = re.compile(r"\[([^\[\]]*)\]")


# --- the request ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    data: bytes = field(repr=False)
    mime: str
    filename: str | None


@dataclass(frozen=True)
class CreateRequest:
    prompt: str
    model: str
    seconds: int
    size: Size
    images: tuple[Image, ...] = ()
    media: tuple[Media, ...] = ()
    negative_prompt: str | None = None
    seed: int | None = None
    generate_audio: bool | None = None
    enhance_prompt: bool | None = None
    person_generation: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    remix_video_id: str | None = None
    given: frozenset[str] = frozenset()  # the fields the client sent (defaults fill the rest)

    @property
    def model_given(self) -> bool:
        return "model" in self.given

    def stored(self) -> dict[str, Any]:
        """The normalized request as kept in the task row: image bytes become a digest."""
        return {
            "prompt": self.prompt,
            "model": self.model,
            "seconds": self.seconds,
            "size": str(self.size),
            "images": [_image_record(i) for i in self.images],
            "media": [{"kind": m.kind, "url": m.url, "role": m.role} for m in self.media],
            **{k: getattr(self, k) for k in HINT_FIELDS if getattr(self, k) is not None},
            "metadata": dict(self.metadata),
            **({"remix_video_id": self.remix_video_id} if self.remix_video_id else {}),
        }

    def fingerprint(self) -> str:
        """A digest of what was asked, for Idempotency-Key (multipart boundaries don't count)."""
        canonical = orjson.dumps(self.stored(), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()


def _image_record(image: Image) -> dict[str, Any]:
    record: dict[str, Any] = {"role": image.role}
    if image.url is not None:
        record["url"] = image.url
    if image.data is not None:
        record.update(
            mime=image.mime, bytes=len(image.data), sha256=hashlib.sha256(image.data).hexdigest()
        )
    return record


# --- reading the HTTP body --------------------------------------------------------------------


async def read_body(
    request: web.Request, *, max_upload: int
) -> tuple[dict[str, Any], Upload | None]:
    """The request's fields, and the uploaded file if there is one.

    Limits hold while reading: a body announcing more than the limit is refused before it is
    read, and a chunked one is cut off as soon as it passes the limit.
    """
    json_limit = _text_limit(max_upload)
    ctype = request.content_type
    if ctype == "multipart/form-data":
        _check_length(request, max_upload + json_limit)
        return await _read_multipart(request, max_upload)
    if ctype in ("application/json", "") or ctype.endswith("+json"):
        _check_length(request, json_limit)
        raw = await _read_limited(request, json_limit)
        if not raw.strip():
            if ctype == "":
                raise UnsupportedMediaType(
                    "send the body as application/json or multipart/form-data"
                )
            raise InvalidRequest(
                "the request body is empty", code="missing_parameter", param="prompt"
            )
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidRequest(
                "the request body is not valid JSON", code="invalid_json"
            ) from None
        if not isinstance(body, dict):
            raise InvalidRequest("the request body must be a JSON object", code="invalid_json")
        return body, None
    if ctype == "application/x-www-form-urlencoded":
        _check_length(request, json_limit)
        raw = await _read_limited(request, json_limit)
        from urllib.parse import parse_qsl

        pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return unflatten(pairs), None
    raise UnsupportedMediaType(
        f"unsupported content type {ctype!r}: send application/json or multipart/form-data "
        "(or application/x-www-form-urlencoded)"
    )


def _text_limit(max_upload: int) -> int:
    """The most text a body may carry: room for an image as a base64 data: URL, and more."""
    return max_upload * 4 // 3 + MULTIPART_OVERHEAD


def _size_text(limit: int) -> str:
    mib = 1024 * 1024
    return f"{limit / mib:.4g} MiB" if limit >= mib else f"{limit / 1024:.4g} KiB"


def _check_length(request: web.Request, limit: int) -> None:
    if request.content_length is not None and request.content_length > limit:
        raise RequestTooLarge(f"the request body is larger than {_size_text(limit)}")


async def _read_limited(request: web.Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"the request body is larger than {_size_text(limit)}")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_multipart(
    request: web.Request, max_upload: int
) -> tuple[dict[str, Any], Upload | None]:
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError, KeyError):
        raise InvalidRequest("the multipart body is malformed", code="invalid_body") from None
    pairs: list[tuple[str, str]] = []
    upload: Upload | None = None
    text_total = 0
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidRequest(
                    "nested multipart bodies are not supported", code="invalid_body"
                )
            name = part.name or ""
            if part.filename is not None:
                if name != "input_reference":
                    raise InvalidRequest(
                        f"a file may only be sent as input_reference (got a file named {name!r})",
                        code="invalid_parameter",
                        param=name or None,
                    )
                if upload is not None:
                    raise InvalidRequest("send one input_reference file", param="input_reference")
                data = await _read_part(
                    part,
                    max_upload,
                    f"input_reference is larger than {_size_text(max_upload)}",
                    param="input_reference",
                )
                if not data and not part.filename:
                    continue  # a browser's file input left empty
                mime = sniff_image(data)
                if mime is None:
                    raise UnsupportedMediaType(
                        "input_reference must be a JPEG, PNG or WebP image (checked by its bytes)",
                        param="input_reference",
                    )
                upload = Upload(data, mime, part.filename)
                continue
            # a text field may hold a data: URL image (input_reference[image_url], image)
            value = await _read_part(
                part,
                _text_limit(max_upload) - text_total,
                f"the form fields are larger than {_size_text(_text_limit(max_upload))}",
                param=name or None,
            )
            text_total += len(value)
            pairs.append((name, value.decode("utf-8", "replace")))
    except ValueError:
        raise InvalidRequest("the multipart body is malformed", code="invalid_body") from None
    return unflatten(pairs), upload


async def _read_part(
    part: BodyPartReader, limit: int, too_large: str, *, param: str | None
) -> bytes:
    chunks, size = [], 0
    while chunk := await part.read_chunk(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(too_large, param=param)
        chunks.append(chunk)
    return b"".join(chunks)


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Form fields with bracket names (`a[b][]`, `a[c][0][d]`) as nested dicts and lists.

    `[]` lists of objects arrive in two orders. Browsers send each item's fields together
    (type, url, type, url); the openai SDK groups them by name (type, type, url, url). A list
    whose fields repeat a name back to back is grouped: a field fills the first item that lacks
    it (preferring an item whose `type` names the field). Otherwise it joins the last item, and
    a name that item already has starts the next one, so an optional field (a role on the
    second item only) lands where it was sent. Numeric indices place items directly; gaps close.
    """
    grouped = _grouped_lists(pairs)
    root: dict[str, Any] = {}
    for name, value in pairs:
        _put(root, _bracket_keys(name), value, (), name, grouped)
    return _without_gaps(root)  # type: ignore[no-any-return]


def _bracket_keys(name: str) -> list[str]:
    head, _, rest = name.partition("[")
    keys = [head] + (_BRACKETS.findall("[" + rest) if rest else [])
    if not head or (rest and "[" + rest != "".join(f"[{k}]" for k in keys[1:])):
        return [name]  # not a bracket name after all: keep it whole
    return keys


def _grouped_lists(pairs: list[tuple[str, str]]) -> set[tuple[str, ...]]:
    """The `[]` lists (by their path) whose fields come grouped by name."""
    last: dict[tuple[str, ...], tuple[str, ...]] = {}
    grouped: set[tuple[str, ...]] = set()
    for name, _ in pairs:
        keys = _bracket_keys(name)
        for j in range(1, len(keys)):
            if keys[j] == "":
                path, sub = tuple(keys[:j]), tuple(keys[j + 1 :])
                if sub and last.get(path) == sub:
                    grouped.add(path)
                last[path] = sub
    return grouped


class _Gap:
    """A list slot no field filled (an index was skipped); removed at the end."""


_GAP = _Gap()


def _is_index(key: str) -> bool:
    return key == "" or (key.isascii() and key.isdigit())


def _put(
    node: dict[str, Any] | list[Any],
    keys: list[str],
    value: str,
    path: tuple[str, ...],
    name: str,
    grouped: set[tuple[str, ...]],
) -> None:
    key, rest = keys[0], keys[1:]
    slot: Any
    if isinstance(node, list):
        if key == "":
            slot = _list_slot(node, rest, value, path in grouped)
        elif len(key) <= 4 and int(key) <= MAX_FORM_INDEX:
            slot = int(key)
        else:
            raise InvalidRequest(
                f"form field {name!r}: list indices go up to {MAX_FORM_INDEX}", param=name
            )
        while len(node) <= slot:
            node.append(_GAP)
        child = node[slot]
    else:
        slot, child = key, node.get(key, _GAP)
    if not rest:
        if isinstance(child, dict | list):
            raise _conflict(name)
        node[slot] = value
        return
    if child is _GAP:
        child = [] if _is_index(rest[0]) else {}
        node[slot] = child
    elif not isinstance(child, dict | list) or isinstance(child, list) != _is_index(rest[0]):
        raise _conflict(name)
    _put(child, rest, value, (*path, key), name, grouped)


def _conflict(name: str) -> InvalidRequest:
    return InvalidRequest(
        f"form field {name!r} conflicts with another field of the same name", param=name
    )


def _list_slot(items: list[Any], rest: list[str], value: str, grouped: bool) -> int:
    if not rest:
        return len(items)
    if grouped:
        free = [i for i, it in enumerate(items) if isinstance(it, dict) and not _has_path(it, rest)]
        # a typed item ({"type": "video_url", "video_url": {...}}) takes the field it names,
        # and the role that fits its type
        kind = _ROLE_TYPES.get(value, "") if rest == ["role"] else rest[0]
        typed = [i for i in free if items[i].get("type") == kind]
        return (typed or free or [len(items)])[0]
    if items and isinstance(items[-1], dict) and not _has_path(items[-1], rest):
        return len(items) - 1
    return len(items)


def _has_path(node: Any, keys: list[str]) -> bool:
    for key in keys:
        if key == "" or not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def _without_gaps(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_gaps(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_without_gaps(v) for v in node if v is not _GAP]
    return node


# --- images -----------------------------------------------------------------------------------


def sniff_image(data: bytes) -> str | None:
    """The image type from its magic bytes: JPEG, PNG or WebP, else None."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _image_from_string(value: Any, param: str, role: str | None, max_upload: int) -> Image:
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{param} must be an http(s) URL or a data: URL", param=param)
    if value.startswith("data:"):
        header, sep, payload = value.partition(",")
        if not sep or not header.lower().endswith(";base64"):
            raise InvalidRequest(
                f"{param}: a data: URL must be base64 (data:image/png;base64,...)",
                code="invalid_image",
                param=param,
            )
        payload = re.sub(r"\s+", "", payload)  # base64 wrapped at 76 columns
        if len(payload) > max_upload * 4 // 3 + 4:
            raise RequestTooLarge(f"{param} is larger than the upload limit", param=param)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(
                f"{param}: the data: URL is not valid base64", code="invalid_image", param=param
            ) from None
        if len(data) > max_upload:
            raise RequestTooLarge(f"{param} is larger than the upload limit", param=param)
        mime = sniff_image(data)
        if mime is None:
            raise InvalidRequest(
                f"{param} must be a JPEG, PNG or WebP image", code="invalid_image", param=param
            )
        return Image(role=role, data=data, mime=mime)
    if not _is_http_url(value):
        raise InvalidRequest(f"{param} must be an http(s) URL or a data: URL", param=param)
    return Image(role=role, url=value)


def _is_http_url(value: str) -> bool:
    if len(value) > 8192 or any(c in value for c in " \r\n\t"):
        return False
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # a malformed [IPv6] host
        return False


# --- parsing fields ---------------------------------------------------------------------------


class _Fields:
    """Typed access to a request's fields; multipart values arrive as strings."""

    def __init__(self, data: Mapping[str, Any], form: bool) -> None:
        self.data = data
        self.form = form

    def string(self, key: str, *, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise InvalidRequest(f"{key} is required", code="missing_parameter", param=key)
            return None
        if not isinstance(value, str):
            raise InvalidRequest(f"{key} must be a string", param=key)
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


def _seconds(fields: _Fields, default: str) -> int:
    value = fields.data.get("seconds", default)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _DIGITS.fullmatch(value.strip()):
        raise InvalidRequest('seconds must be a whole number of seconds, like "4"', param="seconds")
    seconds = int(value)
    if not 1 <= seconds <= MAX_SECONDS:
        raise InvalidRequest(f"seconds must be between 1 and {MAX_SECONDS}", param="seconds")
    return seconds


def _size(fields: _Fields, default: str) -> Size:
    value = fields.data.get("size", default)
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


def _input_reference(value: Any, max_upload: int) -> tuple[list[Image], list[Media]]:
    param = "input_reference"
    if isinstance(value, str):
        return [_image_from_string(value, param, None, max_upload)], []
    if not isinstance(value, dict):
        raise InvalidRequest(
            "input_reference must be a file, or an object with image_url or content", param=param
        )
    if "file_id" in value:
        raise InvalidRequest(
            "input_reference.file_id is not supported: this relay has no Files API; send the "
            "image as a file upload, an image_url or a data: URL",
            code="unsupported_parameter",
            param="input_reference.file_id",
        )
    for key in value:
        if key not in ("image_url", "content"):
            raise InvalidRequest(
                f"unknown field input_reference.{key}",
                code="unknown_parameter",
                param=f"{param}.{key}",
            )
    if "image_url" in value and "content" in value:
        raise InvalidRequest(
            "give input_reference.image_url or input_reference.content, not both", param=param
        )
    if "image_url" in value:
        image_url = value["image_url"]
        if isinstance(image_url, dict):  # {"image_url": {"url": ...}}, as content items carry it
            image_url = image_url.get("url")
        return [_image_from_string(image_url, f"{param}.image_url", None, max_upload)], []
    content = value.get("content")
    if not isinstance(content, list) or not content:
        raise InvalidRequest(
            "input_reference.content must be a non-empty list", param=f"{param}.content"
        )
    images: list[Image] = []
    media: list[Media] = []
    frames: set[str] = set()
    for i, item in enumerate(content):
        where = f"{param}.content[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where} must be an object", param=where)
        if "text" in item or item.get("type") == "text":
            raise InvalidRequest(
                f"{where}.text is not supported: put the text in prompt",
                code="unsupported_parameter",
                param=f"{where}.text",
            )
        kind = item.get("type")
        if kind not in ("image_url", "video_url", "audio_url"):
            raise InvalidRequest(
                f"{where}.type must be image_url, video_url or audio_url", param=f"{where}.type"
            )
        for key in item:
            if key not in ("type", "role", kind):
                raise InvalidRequest(
                    f"unknown field {where}.{key}", code="unknown_parameter", param=f"{where}.{key}"
                )
        role = item.get("role")
        if role is not None and not isinstance(role, str):
            raise InvalidRequest(f"{where}.role must be a string", param=f"{where}.role")
        ref = item.get(kind)
        url = ref.get("url") if isinstance(ref, dict) else ref
        if kind == "image_url":
            if role is not None and role not in IMAGE_ROLES:
                raise InvalidRequest(
                    f"{where}.role must be one of {', '.join(sorted(IMAGE_ROLES))}",
                    param=f"{where}.role",
                )
            if role in frames:
                raise InvalidRequest(f"only one image may be the {role}", param=f"{where}.role")
            if role in ("first_frame", "last_frame"):
                frames.add(role)
            images.append(_image_from_string(url, f"{where}.{kind}.url", role, max_upload))
            continue
        media_kind: Literal["video", "audio"] = "video" if kind == "video_url" else "audio"
        if role is not None and role != MEDIA_ROLES[media_kind]:
            raise InvalidRequest(
                f"{where}.role must be {MEDIA_ROLES[media_kind]}", param=f"{where}.role"
            )
        if not isinstance(url, str) or not _is_http_url(url):
            raise InvalidRequest(
                f"{where}.{kind}.url must be an http(s) URL", param=f"{where}.{kind}.url"
            )
        media.append(Media(kind=media_kind, url=url, role=role or MEDIA_ROLES[media_kind]))
    return images, media


def parse_create(
    data: Mapping[str, Any],
    upload: Upload | None,
    *,
    defaults: Defaults,
    max_upload: int,
    form: bool = False,
) -> CreateRequest:
    """A create request from its fields; raises InvalidRequest naming the field."""
    _check_names(data, CREATE_FIELDS, foreign=FOREIGN_FIELDS)
    data = {k: v for k, v in data.items() if v is not None}  # JSON null: as if not sent
    fields = _Fields(data, form)
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
        images, media = _input_reference(data["input_reference"], max_upload)
    if "image" in data:
        if images or media:
            raise InvalidRequest(
                "give the image once: image or input_reference, not both", param="image"
            )
        images.append(_image_from_string(data["image"], "image", None, max_upload))
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
    return CreateRequest(
        prompt=prompt,
        model=model or defaults.model,
        seconds=_seconds(fields, defaults.seconds),
        size=_size(fields, defaults.size),
        images=tuple(images),
        media=tuple(media),
        metadata=_metadata(fields),
        remix_video_id=remix_id.strip() if remix_id is not None else None,
        given=frozenset(k for k in data if k in CREATE_FIELDS),
        **_hints(fields),
    )


def _model(fields: _Fields) -> str | None:
    model = fields.string("model")
    if model is not None and not model.strip():
        raise InvalidRequest("model must not be empty", param="model")
    return model.strip() if model is not None else None


@dataclass(frozen=True)
class RemixRequest:
    prompt: str
    model: str | None
    seconds: int | None
    size: Size | None
    metadata: Mapping[str, Any]


def parse_remix(data: Mapping[str, Any]) -> RemixRequest:
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
    fields = _Fields(data, False)
    return RemixRequest(
        prompt=_prompt(fields),
        model=_model(fields),
        seconds=_seconds(fields, "4") if "seconds" in data else None,
        size=_size(fields, "") if "size" in data else None,
        metadata=_metadata(fields),
    )


# --- rendering --------------------------------------------------------------------------------


def render(task: TaskRow, public_url: str) -> dict[str, Any]:
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
