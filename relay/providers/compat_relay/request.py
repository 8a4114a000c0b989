"""The gateways' create body (spec/providers/compat-relay.md, "Mapping"): OpenAI's fields, with
`metadata` sent as the gateway's own field, which it merges into the backing provider's body.
"""

from __future__ import annotations

from typing import Any

import orjson

from relay.domain import VideoRequest
from relay.providers.base import split_frames
from relay.providers.normalize import clean_metadata
from relay.providers.openai.request import create_fields


def json_create(request: VideoRequest, model: str, seconds: int, size: str) -> dict[str, Any]:
    """The JSON create: an image URL passes through; `metadata` goes as the gateway's own field,
    which it merges into the backing provider's native body."""
    body = create_fields(request, model, seconds, size)
    image = split_frames(request.images).first
    if image is not None:
        body["input_reference"] = {"image_url": image.url_or_data_url()}
    metadata = clean_metadata(request.metadata)
    if metadata:
        body["metadata"] = metadata
    return body


def form_create(
    request: VideoRequest, model: str, seconds: int, size: str
) -> list[tuple[str, str]]:
    pairs = list(create_fields(request, model, seconds, size).items())
    metadata = clean_metadata(request.metadata)
    if metadata:
        pairs.append(("metadata", orjson.dumps(metadata).decode()))
    return pairs
