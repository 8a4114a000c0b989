"""A client's request -> OpenRouter create body (`POST /videos`), as pure functions
(spec/providers/openrouter.md, "Mapping")."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.domain import Image, Size, VideoRequest
from relay.providers.base import split_frames
from relay.providers.errors import Rejected, Unsupported
from relay.providers.normalize import clean_metadata, deep_merge
from relay.providers.openrouter.models import (
    HEIGHTS,
    Capabilities,
    duration,
    pixel_size,
    size_fields,
)

log = logging.getLogger("relay.providers.openrouter")


@dataclass(frozen=True)
class CreateBody:
    body: dict[str, Any]
    seconds: str  # what was asked upstream, as the video object reports it
    size: str


def create_body(
    request: VideoRequest,
    model: str,
    caps: Capabilities | None,
    *,
    provider_slug: str = "",
) -> CreateBody:
    """The native body for a request to upstream `model` (`caps`: its row of the models list,
    None when the list does not have it)."""
    seconds = duration(request.duration, caps)
    sized = size_fields(request.dimensions, caps)
    # `duration` is an integer; a field named `seconds` is never sent
    body: dict[str, Any] = {"model": model, "prompt": request.prompt, "duration": seconds}
    body.update(sized.fields)
    body.update(image_fields(request, caps))
    if request.generate_audio is not None:
        if caps is None or caps.generate_audio:
            body["generate_audio"] = request.generate_audio
        else:  # sending it to a model without audio is a 400
            log.debug("generate_audio dropped: %s has no audio", model)
    if request.seed is not None:
        if caps is None or caps.seed:
            body["seed"] = request.seed
        else:
            log.debug("seed dropped: %s takes no seed", model)
    if request.negative_prompt is not None:
        if provider_slug and caps is not None and "negativePrompt" in caps.passthrough:
            params = {"parameters": {"negativePrompt": request.negative_prompt}}
            body["provider"] = {"options": {provider_slug: params}}
        else:
            log.debug("negative_prompt dropped: no passthrough for %s", model)
    for hint in ("enhance_prompt", "person_generation"):
        if getattr(request, hint) is not None:
            log.debug("%s dropped: OpenRouter has no such field", hint)
    metadata = clean_metadata(request.metadata)
    metadata.pop("seconds", None)  # not even through metadata: `duration` is the field
    # the two size forms exclude each other: one set through metadata replaces the other
    if "size" in metadata:
        body.pop("resolution", None)
        body.pop("aspect_ratio", None)
    elif "resolution" in metadata or "aspect_ratio" in metadata:
        body.pop("size", None)
    body = deep_merge(body, metadata)
    return CreateBody(body, str(body.get("duration", seconds)), reported_size(body, sized.reported))


def image_fields(request: VideoRequest, caps: Capabilities | None) -> dict[str, Any]:
    """Frames as `frame_images` where the model takes that frame type, else references; reference
    videos and audios as `input_references`. OpenRouter lets frame_images win over references,
    so a request that needs both is refused rather than half ignored."""
    frames = split_frames(request.images)
    frame_types = ("first_frame", "last_frame") if caps is None else caps.frame_images
    frame_items: list[dict[str, Any]] = []
    references = [_image(i) for i in frames.references]
    if frames.first is not None:
        if "first_frame" in frame_types:
            frame_items.append({**_image(frames.first), "frame_type": "first_frame"})
        else:
            references.insert(0, _image(frames.first))
    if frames.last is not None:
        if "last_frame" not in frame_types:
            raise Unsupported(f"the OpenRouter model {request.public_model!r} takes no last frame")
        frame_items.append({**_image(frames.last), "frame_type": "last_frame"})
    references += [
        {"type": f"{m.kind}_url", f"{m.kind}_url": {"url": m.url}} for m in request.media
    ]
    if frame_items and references:
        raise Rejected(
            "frame images and reference inputs cannot be combined on OpenRouter (the references "
            "would be ignored)",
            param="input_reference",
        )
    fields: dict[str, Any] = {}
    if frame_items:
        fields["frame_images"] = frame_items
    if references:
        fields["input_references"] = references
    return fields


def _image(image: Image) -> dict[str, Any]:
    # unconfirmed upstream: data URLs (OpenRouter's image and chat APIs take them)
    return {"type": "image_url", "image_url": {"url": image.url_or_data_url()}}


def reported_size(body: Mapping[str, Any], mapped: str) -> str:
    """The size the video object shows: metadata may have replaced the mapped fields."""
    size = body.get("size")
    parsed = Size.parse(size) if isinstance(size, str) else None
    if parsed is not None and parsed.width:
        return str(parsed)
    resolution, ratio = body.get("resolution"), body.get("aspect_ratio")
    parsed = Size.parse(ratio) if isinstance(ratio, str) else None
    if resolution in HEIGHTS and parsed is not None and parsed.ratio is not None:
        return pixel_size(resolution, str(parsed))
    return mapped
