"""Vidu's create requests as pure functions (spec/providers/vidu.md): the submit path chosen by
the images, what Vidu cannot take, and the native body.

Vidu has four submit paths: no image (text2video), one first frame (img2video), a first and a last
frame (start-end2video), or references (reference2video).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relay.domain import Image, VideoRequest
from relay.providers.base import split_frames
from relay.providers.normalize import merge_metadata, snap_ratio, snap_seconds, tier
from relay.providers.vidu.models import (
    RESOLUTION_ORDER,
    WIDE_RATIOS,
    family,
    pixel_size,
    resolution,
)

TEXT, IMAGE, START_END, REFERENCE = "text2video", "img2video", "start-end2video", "reference2video"
MAX_REFERENCES = 7


def route(request: VideoRequest) -> tuple[str, list[Image]]:
    """The submit path and its images, in the order Vidu reads them."""
    images = list(request.images)
    roles = [image.role for image in images]
    if "subjects" in request.metadata or "reference_image" in roles or len(images) > 2:
        return REFERENCE, images
    if not images:
        return TEXT, []
    if len(images) == 1:
        return IMAGE, images
    frames = split_frames(images)
    if frames.first is None or frames.last is None:  # two last frames: refused before a submit
        return START_END, images
    return START_END, [frames.first, frames.last]


def refusal(request: VideoRequest) -> str | None:
    """Why Vidu cannot take these images, or None."""
    roles = [image.role for image in request.images]
    frames = [r for r in roles if r in ("first_frame", "last_frame")]
    if "reference_image" in roles and frames:
        return "vidu cannot mix reference images with first or last frames"
    path, _ = route(request)
    if path == IMAGE and roles == ["last_frame"]:
        return "vidu needs a first frame to go with a last frame"
    if path == START_END and (roles.count("first_frame") > 1 or roles.count("last_frame") > 1):
        return "vidu takes one first frame and one last frame"
    if path == REFERENCE and len(request.images) > MAX_REFERENCES:
        return f"vidu takes at most {MAX_REFERENCES} reference images"
    return None


@dataclass(frozen=True)
class Native:
    path: str
    body: dict[str, Any]
    seconds: int  # what went upstream, metadata included
    size: str
    dropped: tuple[str, ...]  # relay hints Vidu has no field for (logged, not sent)


def build(request: VideoRequest, model: str) -> Native:
    """The native body for the upstream `model`, and the path it goes to."""
    fam = family(model)
    path, images = route(request)
    duration = snap_seconds(
        request.duration, fam.start_end_durations if path == START_END else fam.durations
    )
    res = resolution(fam, tier(request.dimensions), duration)
    ratio = snap_ratio(request.dimensions, fam.ratios)
    body: dict[str, Any] = {
        "model": model,
        "prompt": request.prompt,
        "duration": duration,
        "resolution": res,
        # Vidu's defaults, spelled out: off_peak may hold a job back for up to 48 h
        "bgm": False,
        "off_peak": False,
    }
    if path in (TEXT, REFERENCE):  # with images the first frame decides the shape
        body["aspect_ratio"] = ratio
    if images:
        body["images"] = [image.url_or_data_url() for image in images]
    if request.seed is not None:
        body["seed"] = request.seed
    dropped = [
        name
        for name, value in (
            ("negative_prompt", request.negative_prompt),
            ("enhance_prompt", request.enhance_prompt),
            ("person_generation", request.person_generation),
        )
        if value is not None
    ]
    if request.generate_audio is not None:
        if fam.audio or (path == REFERENCE and "subjects" in request.metadata):
            body["audio"] = request.generate_audio
        else:
            dropped.append("generate_audio")
    body = merge_metadata(body, request.metadata)
    sent_duration = body.get("duration")
    if not isinstance(sent_duration, int) or isinstance(sent_duration, bool):
        sent_duration = duration
    sent_res = body.get("resolution")
    if sent_res not in RESOLUTION_ORDER:
        sent_res = res
    sent_ratio = body.get("aspect_ratio")
    if sent_ratio not in WIDE_RATIOS:
        sent_ratio = ratio
    return Native(path, body, sent_duration, pixel_size(sent_ratio, sent_res), tuple(dropped))
