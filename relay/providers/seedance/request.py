"""A client's request -> Ark create body (`POST /contents/generations/tasks`), as pure functions."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from relay.domain import Image, Media, VideoRequest
from relay.providers.base import split_frames
from relay.providers.errors import Rejected
from relay.providers.normalize import clamp_seconds, clean_metadata, deep_merge
from relay.providers.seedance.models import (
    RATIOS,
    RESOLUTIONS,
    Family,
    pixel_size,
    ratio_for,
    resolution_for,
)

log = logging.getLogger("relay.providers.seedance")

FRAME_ROLES = ("first_frame", "last_frame")
MAX_MEDIA = 3  # reference videos, and reference audios, per request


@dataclass(frozen=True)
class CreateBody:
    body: dict[str, Any]
    seconds: str  # what was asked upstream, as the video object reports it
    size: str


def create_body(
    request: VideoRequest,
    model: str,
    family: Family,
    *,
    return_last_frame: bool,
    media: Sequence[Media] = (),
) -> CreateBody:
    """The native body for a request to upstream `model`; `media` adds items the relay itself
    supplies (remix)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]
    content += image_items(request.images)
    content += [media_item(m) for m in (*request.media, *media)]
    metadata = clean_metadata(request.metadata)
    content += metadata_items(metadata.pop("content", None))
    check_content(content)

    reference_mode = any(item.get("role") == "reference_image" for item in content)
    size = request.dimensions
    ratio = ratio_for(size)
    resolution = resolution_for(size)
    low, high = family.durations
    body: dict[str, Any] = {"model": model, "content": content, "ratio": ratio}
    if resolution is not None and family.sends_resolution(reference_mode):
        body["resolution"] = resolution
    body["duration"] = clamp_seconds(request.duration, low, high)
    if request.seed is not None:
        body["seed"] = request.seed
    if request.generate_audio is not None:
        if family.has_audio:
            body["generate_audio"] = request.generate_audio
        else:
            log.debug("generate_audio dropped: %s has no audio", model)
    if return_last_frame:
        body["return_last_frame"] = True
    for hint in ("negative_prompt", "enhance_prompt", "person_generation"):
        if getattr(request, hint) is not None:
            log.debug("%s dropped: Seedance has no such field", hint)
    # metadata may override anything above but content, which it extends instead
    body = deep_merge(body, metadata)
    body["content"] = content
    return CreateBody(
        body, requested_seconds(body, request.duration), requested_size(body, family, request)
    )


def image_items(images: Sequence[Image]) -> list[dict[str, Any]]:
    """Images with explicit roles (Ark wants both set in first+last mode): which image is the
    first frame and which the last is split_frames' call; the items keep the client's order."""
    frames = [i for i in images if i.role in (None, *FRAME_ROLES)]
    references = [i for i in images if i.role == "reference_image"]
    if frames and references:
        raise Rejected(
            "first/last frame images and reference images cannot be combined",
            param="input_reference",
        )
    if len(frames) > 2:
        raise Rejected("at most two frame images (first and last)", param="input_reference")
    roles = [i.role for i in frames if i.role is not None]
    if len(roles) == 2 and roles[0] == roles[1]:
        raise Rejected(f"two images with role {roles[0]}", param="input_reference")
    # An explicit first_frame stays the first frame: split_frames alone would make it the last
    # one after a role-less image. A stable sort hands it over first.
    split = split_frames(sorted(frames, key=lambda image: image.role != "first_frame"))
    if split.last is not None and split.first is None:
        raise Rejected("a last_frame image needs a first_frame image", param="input_reference")
    items = []
    first_given = False
    for image in frames:
        is_first = image is split.first and not first_given
        first_given = first_given or is_first
        items.append(_image(image, "first_frame" if is_first else "last_frame"))
    return items + [_image(image, "reference_image") for image in references]


def _image(image: Image, role: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": image.url_or_data_url()}, "role": role}


def media_item(media: Media) -> dict[str, Any]:
    kind = f"{media.kind}_url"
    return {"type": kind, kind: {"url": media.url}, "role": media.role or f"reference_{media.kind}"}


def metadata_items(value: Any) -> list[dict[str, Any]]:
    """`metadata.content` items go after the relay's own; text items are dropped (the prompt is
    the one text item upstream accepts)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(i, Mapping) for i in value):
        raise Rejected("metadata.content must be a list of objects", param="metadata.content")
    kept = []
    for item in value:
        if item.get("type") == "text":
            log.info("metadata.content: a text item was dropped; the prompt is the only text")
            continue
        kept.append(dict(item))
    return kept


def check_content(content: Sequence[Mapping[str, Any]]) -> None:
    """What every model refuses, found before the request goes out."""
    kinds = [item.get("type") for item in content]
    for kind in ("video_url", "audio_url"):
        if kinds.count(kind) > MAX_MEDIA:
            noun = kind.removesuffix("_url")
            raise Rejected(f"at most {MAX_MEDIA} reference {noun}s", param="input_reference")
    if "audio_url" in kinds and "image_url" not in kinds and "video_url" not in kinds:
        raise Rejected(
            "a reference audio needs a reference image or video as well", param="input_reference"
        )


def requested_seconds(body: Mapping[str, Any], asked: int) -> str:
    """`frames` (1.0) overrides `duration`; -1 (the model decides) reports the client's ask."""
    frames = body.get("frames")
    if _int(frames) and frames > 0:
        return str(max(1, round(frames / 24)))
    duration = body.get("duration")
    if _int(duration) and duration > 0:
        return str(duration)
    return str(asked)


def requested_size(body: Mapping[str, Any], family: Family, request: VideoRequest) -> str:
    resolution = body.get("resolution")
    if resolution not in RESOLUTIONS:
        resolution = family.default_resolution if resolution is None else None
    ratio = body.get("ratio")
    if ratio not in RATIOS:  # adaptive: the output follows the image; the poll tells
        ratio = ratio_for(request.dimensions)
    if resolution is None and request.dimensions.width:  # e.g. a 4k asked through metadata
        return str(request.dimensions)
    found = pixel_size(family.generation, resolution or "1080p", ratio)
    assert found is not None
    return found


def _int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
