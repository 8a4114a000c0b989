"""xAI's create and edit bodies as pure functions (spec/providers/xai.md).

JSON only. `duration` is an integer and `aspect_ratio` + `resolution` carry the shape: the
OpenAI `seconds` and `size` are never sent. With an input image the image decides the shape, so
no `aspect_ratio` goes with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.domain import VideoRequest
from relay.providers.base import split_frames
from relay.providers.errors import Rejected
from relay.providers.normalize import clamp_seconds, clean_metadata, deep_merge, snap_ratio, tier
from relay.providers.xai.models import (
    MAX_PROMPT,
    MAX_REFERENCE_IMAGES,
    MAX_REFERENCE_SECONDS,
    MAX_SECONDS,
    MIN_SECONDS,
    RATIOS,
    RESOLUTIONS,
    model_of,
    pixel_size,
    resolution,
)

# keys a client's metadata may not set: the relay picks the model, and an `output.upload_url` or
# `storage_options` would send the result somewhere the relay does not serve it from
_NOT_FROM_METADATA = {"output", "storage_options"}  # beside normalize's CONTROLLED_KEYS
_EDIT_REFUSES = ("duration", "aspect_ratio", "resolution", "image", "reference_images",
                 "reference_audios")  # fmt: skip


@dataclass(frozen=True)
class Native:
    body: dict[str, Any]
    seconds: int  # what went upstream, metadata included
    size: str
    dropped: tuple[str, ...]  # relay hints xAI has no field for (logged, not sent)


def refusal(request: VideoRequest, model_name: str) -> str | None:
    """Why this model cannot take the request (xAI would answer 400), or None."""
    model = model_of(model_name)
    images = split_frames(request.images)
    references = images.references + _metadata_items(request.metadata, "reference_images")
    if request.remix_of is not None and not model.edits:
        return f"remix is not supported for this model ({model_name} cannot edit a video)"
    if request.remix_of is not None:
        return None
    if not model.text and images.first is None:
        return f"{model_name} is image-to-video only: it needs an input image"
    if references and not model.references:
        return f"{model_name} does not support reference images"
    if references and images.first is not None:
        return "xai cannot combine a first-frame image with reference images"
    if len(references) > MAX_REFERENCE_IMAGES:
        return f"xai takes at most {MAX_REFERENCE_IMAGES} reference images"
    return None


def check_prompt(prompt: str) -> None:
    if len(prompt) > MAX_PROMPT:
        raise Rejected(f"xai takes a prompt of at most {MAX_PROMPT} characters", param="prompt")


def build(request: VideoRequest, model_name: str, default_resolution: str) -> Native:
    """The body of POST /v1/videos/generations for the upstream `model_name`."""
    check_prompt(request.prompt)
    model = model_of(model_name)
    images = split_frames(request.images)
    metadata = clean(request.metadata)
    has_references = bool(images.references or _metadata_items(metadata, "reference_images"))
    duration = clamp_seconds(
        request.duration, MIN_SECONDS, MAX_REFERENCE_SECONDS if has_references else MAX_SECONDS
    )
    res = resolution(model, tier(request.dimensions), default_resolution, references=has_references)
    ratio = snap_ratio(request.dimensions, RATIOS)
    body: dict[str, Any] = {
        "model": model_name,
        "prompt": request.prompt,
        "duration": duration,
        "resolution": res,
    }
    if images.first is not None:
        body["image"] = {"url": images.first.url_or_data_url()}
    else:
        body["aspect_ratio"] = ratio
    if images.references:
        body["reference_images"] = [{"url": i.url_or_data_url()} for i in images.references]
    if request.generate_audio is not None:
        body["generate_audio"] = request.generate_audio
    dropped = tuple(
        name
        for name in ("negative_prompt", "seed", "enhance_prompt", "person_generation")
        if getattr(request, name) is not None
    )
    body = deep_merge(body, metadata)
    sent = body.get("duration")
    if not isinstance(sent, int) or isinstance(sent, bool):
        sent = duration
    sent_res = body.get("resolution")
    sent_ratio = body.get("aspect_ratio")
    size = pixel_size(
        sent_ratio if isinstance(sent_ratio, str) and sent_ratio in RATIOS else ratio,
        sent_res if isinstance(sent_res, str) and sent_res in RESOLUTIONS else res,
    )
    return Native(body, sent, size, dropped)


def edit_body(prompt: str, video_url: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The body of POST /v1/videos/edits: the model that edits, the prompt and the clip; the
    output keeps the clip's length and size, so the shape fields xAI refuses here are left out."""
    check_prompt(prompt)
    extra = {k: v for k, v in clean(metadata).items() if k not in _EDIT_REFUSES}
    body = {"model": "grok-imagine-video", "prompt": prompt, "video": {"url": video_url}}
    return deep_merge(body, {k: v for k, v in extra.items() if k not in ("video", "prompt")})


def clean(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return clean_metadata(metadata, _NOT_FROM_METADATA)


def _metadata_items(metadata: Mapping[str, Any], key: str) -> tuple[Any, ...]:
    value = metadata.get(key)
    return tuple(value) if isinstance(value, list) else ()
