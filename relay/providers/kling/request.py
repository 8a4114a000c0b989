"""A relay request as Kling's create body, and the family path it goes to (spec/providers/kling.md,
"Mapping"). Pure: nothing here does I/O.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from relay.domain import Image, VideoRequest
from relay.providers.base import split_frames
from relay.providers.errors import Rejected
from relay.providers.kling.models import (
    MAX_PROMPT,
    MODES,
    RATIOS,
    choose_mode,
    durations,
    has_sound,
    pixel_size,
)
from relay.providers.normalize import merge_metadata, snap_ratio, snap_seconds, whole_seconds

log = logging.getLogger("relay.providers.kling")

TEXT2VIDEO, IMAGE2VIDEO = "text2video", "image2video"


@dataclass(frozen=True)
class NativeRequest:
    family: str
    body: dict[str, Any]
    seconds: str  # what was sent, as a whole-number string
    size: str  # the WxH that model, mode and ratio produce


def build_request(request: VideoRequest, model: str, default_mode: str) -> NativeRequest:
    """The create body and the family path it goes to; raises Rejected for what Kling refuses."""
    for name, text in (
        ("prompt", request.prompt),
        ("negative_prompt", request.negative_prompt or ""),
    ):
        if len(text) > MAX_PROMPT:
            raise Rejected(f"{name}: Kling accepts at most {MAX_PROMPT} characters", param=name)
    size = request.dimensions
    seconds = snap_seconds(request.duration, durations(model))
    body: dict[str, Any] = {
        "model_name": model,
        "prompt": request.prompt,
        "mode": choose_mode(model, size, default_mode),
        "duration": str(seconds),
    }
    if request.negative_prompt:
        body["negative_prompt"] = request.negative_prompt
    if request.generate_audio is not None and has_sound(model):
        body["sound"] = "on" if request.generate_audio else "off"
    frames = split_frames(request.images)
    if frames.first is not None:
        body["image"] = image_value(frames.first)
    if frames.last is not None:
        body["image_tail"] = image_value(frames.last)
    _log_dropped(request, model)
    body = merge_metadata(body, request.metadata)
    for key in ("image", "image_tail"):
        if isinstance(body.get(key), str):
            body[key] = strip_data_prefix(body[key])
    family = IMAGE2VIDEO if body.get("image") or body.get("image_tail") else TEXT2VIDEO
    ratio = snap_ratio(size, RATIOS)
    if family == TEXT2VIDEO:
        body.setdefault("aspect_ratio", ratio)
        if body["aspect_ratio"] in RATIOS:
            ratio = body["aspect_ratio"]
    if "image_tail" in body and {"camera_control", "static_mask", "dynamic_masks"} & set(body):
        raise Rejected(
            "a last frame (image_tail) cannot be combined with camera_control or motion masks",
            param="metadata",
        )
    mode = body["mode"] if body.get("mode") in MODES else "std"
    return NativeRequest(
        family=family,
        body=body,
        seconds=whole_seconds(body.get("duration")) or str(seconds),
        size=pixel_size(model, mode, ratio),
    )


def image_value(image: Image) -> str:
    return image.url if image.url is not None else image.base64()


def strip_data_prefix(value: str) -> str:
    """Kling wants raw base64: a `data:...;base64,` prefix makes it refuse the image."""
    if value.startswith("data:") and ";base64," in value:
        return value.split(";base64,", 1)[1]
    return value


def _log_dropped(request: VideoRequest, model: str) -> None:
    dropped = [
        name
        for name, value in (
            ("seed", request.seed),
            ("enhance_prompt", request.enhance_prompt),
            ("person_generation", request.person_generation),
            ("generate_audio", None if has_sound(model) else request.generate_audio),
        )
        if value is not None
    ]
    if dropped:
        log.debug("kling %s has no field for %s: dropped", model, ", ".join(dropped))
