"""Input images and reference media from a create request: `input_reference` as an object,
its `content[]` items with roles, `image`, http(s) and data: URLs (checked by magic bytes)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from relay.domain import Image, Media, sniff_image, sniff_media
from relay.errors import InvalidRequest, RequestTooLarge

IMAGE_ROLES = frozenset({"first_frame", "last_frame", "reference_image"})
MEDIA_ROLES = {"video": "reference_video", "audio": "reference_audio"}
_SPACE = re.compile(r"\s+")
# the declared types a reference may keep (served as received to a provider that fetches it);
# any other declaration gets the type its magic bytes show
DECLARED_TYPES = {
    "video": frozenset({"video/mp4", "video/quicktime", "video/webm"}),
    "audio": frozenset(
        {"audio/wav", "audio/x-wav", "audio/mpeg", "audio/mp3", "audio/mp4", "audio/aac",
         "audio/ogg", "audio/flac"}
    ),
}  # fmt: skip


def _data_url(value: str, param: str, limit: int, code: str, example: str) -> tuple[str, bytes]:
    """(the declared type, the bytes) of a base64 data: URL, within `limit` bytes."""
    header, sep, payload = value.partition(",")
    if not sep or not header.lower().endswith(";base64"):
        raise InvalidRequest(
            f"{param}: a data: URL must be base64 ({example})", code=code, param=param
        )
    # base64 wrapped at 76 columns; the `in` scans run at memchr speed (a regex over megabytes
    # would hold the event loop), and a payload without whitespace is not copied
    if any(c in payload for c in " \t\r\n\f\v"):
        payload = _SPACE.sub("", payload)
    if len(payload) > limit * 4 // 3 + 4:
        raise RequestTooLarge(f"{param} is larger than the upload limit", param=param)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(
            f"{param}: the data: URL is not valid base64", code=code, param=param
        ) from None
    if len(data) > limit:
        raise RequestTooLarge(f"{param} is larger than the upload limit", param=param)
    return header[5:].partition(";")[0].strip().lower(), data


def image_from_string(value: Any, param: str, role: str | None, max_upload: int) -> Image:
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{param} must be an http(s) URL or a data: URL", param=param)
    if value.startswith("data:"):
        _, data = _data_url(value, param, max_upload, "invalid_image", "data:image/png;base64,...")
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


def input_reference(
    value: Any, max_upload: int, max_media: int | None = None
) -> tuple[list[Image], list[Media]]:
    param = "input_reference"
    if isinstance(value, str):
        return [image_from_string(value, param, None, max_upload)], []
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
        return [image_from_string(image_url, f"{param}.image_url", None, max_upload)], []
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
            images.append(image_from_string(url, f"{where}.{kind}.url", role, max_upload))
            continue
        media_kind: Literal["video", "audio"] = "video" if kind == "video_url" else "audio"
        if role is not None and role != MEDIA_ROLES[media_kind]:
            raise InvalidRequest(
                f"{where}.role must be {MEDIA_ROLES[media_kind]}", param=f"{where}.role"
            )
        media.append(
            media_from_string(url, f"{where}.{kind}.url", media_kind, role, max_media or max_upload)
        )
    return images, media


def media_from_string(
    value: Any, param: str, kind: Literal["video", "audio"], role: str | None, limit: int
) -> Media:
    """A reference video or audio: an http(s) URL as it is, or a data: URL's bytes, whose magic
    bytes must be that kind of media. The declared type is kept when it names the same kind
    (the relay serves it as received to a provider that fetches by URL), else the sniffed one."""
    role = role or MEDIA_ROLES[kind]
    if isinstance(value, str) and value.startswith("data:"):
        declared, data = _data_url(
            value, param, limit, "invalid_parameter", f"data:{kind}/...;base64,..."
        )
        sniffed = sniff_media(data, kind)
        if sniffed is None:
            wanted = (
                "an MP4, MOV or WebM video"
                if kind == "video"
                else "a WAV, MP3, M4A, Ogg, FLAC or AAC audio"
            )
            raise InvalidRequest(f"{param} must be {wanted}", param=param)
        mime = declared if declared in DECLARED_TYPES[kind] else sniffed
        return Media(kind=kind, role=role, data=data, mime=mime, param=param)
    if not isinstance(value, str) or not _is_http_url(value):
        raise InvalidRequest(f"{param} must be an http(s) URL or a data: URL", param=param)
    return Media(kind=kind, url=value, role=role, param=param)
