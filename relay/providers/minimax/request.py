"""MiniMax Hailuo create requests as pure functions (spec/providers/minimax.md): the native body
of `POST /v1/video_generation` for a request and an upstream model (models.py has the limits)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relay.domain import VideoRequest
from relay.providers.base import split_frames
from relay.providers.minimax.models import (
    RESOLUTIONS,
    duration,
    family,
    pixel_size,
    resolution,
)
from relay.providers.normalize import merge_metadata, tier


@dataclass(frozen=True)
class Native:
    body: dict[str, Any]
    seconds: int  # what went upstream, metadata included
    size: str
    dropped: tuple[str, ...]  # relay hints MiniMax has no field for (logged, not sent)


def build(request: VideoRequest, model: str) -> Native:
    fam = family(model)
    frames = split_frames(request.images)
    first, last, references = frames.first, frames.last, frames.references
    res = resolution(fam, tier(request.dimensions), low_res_ok=first is not None and last is None)
    body: dict[str, Any] = {
        "model": model,
        "prompt": request.prompt,
        "duration": duration(fam, request.duration, res),
        "resolution": res,
    }
    if first is not None:
        body["first_frame_image"] = first.url_or_data_url()
    if last is not None:
        body["last_frame_image"] = last.url_or_data_url()
    if references:
        body["subject_reference"] = [
            {"type": "character", "image": [references[0].url_or_data_url()]}
        ]
    if request.enhance_prompt is not None:
        body["prompt_optimizer"] = request.enhance_prompt
    dropped = tuple(
        name
        for name, value in (
            ("negative_prompt", request.negative_prompt),
            ("seed", request.seed),
            ("generate_audio", request.generate_audio),
            ("person_generation", request.person_generation),
        )
        if value is not None
    )
    body = merge_metadata(body, request.metadata)
    sent_res = body.get("resolution")
    if sent_res not in RESOLUTIONS:
        sent_res = res
    if "duration" not in request.metadata:  # a resolution from metadata still forces 6 s at 1080P
        body["duration"] = duration(fam, request.duration, sent_res)
    sent_seconds = body["duration"]
    if type(sent_seconds) is not int or sent_seconds <= 0:
        sent_seconds = duration(fam, request.duration, sent_res)
    # t2v is always landscape; i2v follows the image, so the client's own orientation is the guess
    portrait = "first_frame_image" in body and request.dimensions.aspect < 1
    return Native(body, sent_seconds, pixel_size(sent_res, portrait), dropped)
