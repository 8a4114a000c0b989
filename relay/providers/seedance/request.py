"""Client job -> Ark create body (`POST /contents/generations/tasks`), as pure functions."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from relay.providers.base import Image, Job, Media, Rejected
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
    job: Job, family: Family, *, return_last_frame: bool, media: Sequence[Media] = ()
) -> CreateBody:
    """The native body for a job; `media` adds items the relay itself supplies (remix)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": job.prompt}]
    content += image_items(job.images)
    content += [media_item(m) for m in (*job.media, *media)]
    metadata = clean_metadata(job.metadata)
    content += metadata_items(metadata.pop("content", None))
    check_content(content)

    reference_mode = any(item.get("role") == "reference_image" for item in content)
    ratio = ratio_for(job.size)
    resolution = resolution_for(job.size)
    low, high = family.durations
    body: dict[str, Any] = {"model": job.model, "content": content, "ratio": ratio}
    if resolution is not None and family.sends_resolution(reference_mode):
        body["resolution"] = resolution
    body["duration"] = clamp_seconds(job.seconds, low, high)
    if job.seed is not None:
        body["seed"] = job.seed
    if job.generate_audio is not None:
        if family.has_audio:
            body["generate_audio"] = job.generate_audio
        else:
            log.debug("generate_audio dropped: %s has no audio", job.model)
    if return_last_frame:
        body["return_last_frame"] = True
    for hint in ("negative_prompt", "enhance_prompt", "person_generation"):
        if getattr(job, hint) is not None:
            log.debug("%s dropped: Seedance has no such field", hint)
    # metadata may override anything above but content, which it extends instead
    body = deep_merge(body, metadata)
    body["content"] = content
    return CreateBody(body, requested_seconds(body, job.seconds), requested_size(body, family, job))


def image_items(images: Sequence[Image]) -> list[dict[str, Any]]:
    """Images with explicit roles: a role-less image is the first frame, a second the last."""
    frames = [i for i in images if i.role in (None, *FRAME_ROLES)]
    references = [i for i in images if i.role == "reference_image"]
    if frames and references:
        raise Rejected(
            "first/last frame images and reference images cannot be combined",
            param="input_reference",
        )
    if len(frames) > 2:
        raise Rejected("at most two frame images (first and last)", param="input_reference")
    roles = [i.role for i in frames]
    if len(frames) == 2:
        if roles[0] is not None and roles[0] == roles[1]:
            raise Rejected(f"two images with role {roles[0]}", param="input_reference")
        if roles[0] == "last_frame" or roles[1] == "first_frame":
            roles = ["last_frame", "first_frame"]
        else:
            roles = ["first_frame", "last_frame"]
    elif roles == ["last_frame"]:
        raise Rejected("a last_frame image needs a first_frame image", param="input_reference")
    elif frames:
        roles = ["first_frame"]
    items = [_image(image, role) for image, role in zip(frames, roles, strict=True)]
    return items + [_image(image, "reference_image") for image in references]


def _image(image: Image, role: str | None) -> dict[str, Any]:
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


def requested_size(body: Mapping[str, Any], family: Family, job: Job) -> str:
    resolution = body.get("resolution")
    if resolution not in RESOLUTIONS:
        resolution = family.default_resolution if resolution is None else None
    ratio = body.get("ratio")
    if ratio not in RATIOS:  # adaptive: the output follows the image; the poll tells
        ratio = ratio_for(job.size)
    if resolution is None and job.size.width:  # e.g. a 4k asked through metadata
        return str(job.size)
    found = pixel_size(family.generation, resolution or "1080p", ratio)
    assert found is not None
    return found


def _int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
