"""The OpenAI create body as pure functions (spec/providers/openai.md, "Mapping"): JSON, or
multipart text fields in bracket notation plus one typed file part for the image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from relay.domain import HINTS, VideoRequest
from relay.providers.base import split_frames
from relay.providers.normalize import merge_metadata

IMAGE_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


def dropped_hints(request: VideoRequest) -> list[str]:
    """The relay's hints the Videos API has no field for."""
    return [name for name in HINTS if getattr(request, name) is not None]


def create_fields(request: VideoRequest, model: str, seconds: int, size: str) -> dict[str, Any]:
    """The create fields, JSON-typed as upstream wants them (`seconds` is a string)."""
    return {"model": model, "prompt": request.prompt, "seconds": str(seconds), "size": size}


def json_create(request: VideoRequest, model: str, seconds: int, size: str) -> dict[str, Any]:
    body = create_fields(request, model, seconds, size)
    image = split_frames(request.images).first
    if image is not None:
        body["input_reference"] = {"image_url": image.url_or_data_url()}
    return merge_metadata(body, request.metadata)


@dataclass(frozen=True)
class FilePart:
    name: str
    data: bytes
    filename: str
    content_type: str


def image_part(data: bytes, mime: str) -> FilePart:
    """The image as a file part; `mime` was sniffed from the bytes (never octet-stream)."""
    return FilePart("input_reference", data, f"input_reference.{IMAGE_EXTENSIONS[mime]}", mime)


def form_create(
    request: VideoRequest, model: str, seconds: int, size: str, has_file: bool
) -> list[tuple[str, str]]:
    """Multipart text fields; metadata joins them in bracket notation (`characters[][id]`)."""
    body = merge_metadata(create_fields(request, model, seconds, size), request.metadata)
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


def form(pairs: list[tuple[str, str]], part: FilePart | None) -> aiohttp.FormData:
    """A multipart body; aiohttp writes the boundary into the Content-Type."""
    data = aiohttp.FormData(default_to_multipart=True)
    for name, value in pairs:
        data.add_field(name, value)
    if part is not None:
        data.add_field(part.name, part.data, filename=part.filename, content_type=part.content_type)
    return data
