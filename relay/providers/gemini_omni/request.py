"""Gemini Omni's create and remix bodies as pure functions (spec/providers/gemini-omni.md): one
Interactions API `POST /v1beta/interactions`, always in the background and asking for URI
delivery, the duration as a string with an `s` suffix."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from relay.domain import VideoRequest
from relay.providers.gemini_omni.models import (
    PIXELS,
    RATIOS,
    SECONDS,
    pixel_size,
    preview,
)
from relay.providers.normalize import clamp_seconds, clean_metadata, deep_merge, tier

_TAG = re.compile(r"<(FIRST_FRAME|LAST_FRAME|IMAGE_REF_\d+|VIDEO_REF_\d+)>")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")
# what the relay controls: a client's metadata never sets these
_RESERVED = ("model", "background", "store", "webhook_config", "input", "previous_interaction_id",
             "response_modalities")  # fmt: skip
# (response_modalities is deprecated, and its upper-case form is a 400)


@dataclass(frozen=True)
class Native:
    body: dict[str, Any]
    seconds: int  # the duration that went upstream, metadata included
    size: str
    dropped: tuple[str, ...]  # relay hints the API has no field for


def build(
    request: VideoRequest,
    model: str,
    image: tuple[bytes, str] | None = None,
    *,
    resolution: str = "720p",
    fold_negative: bool = False,
    previous: str | None = None,
) -> Native:
    """The body for `model`; `image` is the first frame's bytes and type, already fetched;
    `previous` the interaction a remix continues."""
    size = request.dimensions
    ratio = "9:16" if size.aspect < 1 else "16:9"  # a square snaps to 16:9
    wanted = tier(size)
    res: str | None = "360p" if wanted == "480p" else wanted
    if res is None and resolution != "720p":
        res = resolution  # a bare ratio: the channel's default tier (720p is the API's own)
    if preview(model):
        res = None
    low, high = SECONDS
    seconds = clamp_seconds(request.duration, low, high)
    prompt = request.prompt
    hints = (("seed", request.seed), ("generate_audio", request.generate_audio))
    dropped = [name for name, value in hints if value is not None]  # audio is always on
    if request.negative_prompt:
        if fold_negative:
            prompt = f"{prompt}\nAvoid: {request.negative_prompt}"
        else:
            dropped.append("negative_prompt")
    blocks: list[dict[str, Any]] = []
    if image is not None:
        data, mime = image
        blocks.append(
            {"type": "image", "data": base64.b64encode(data).decode("ascii"), "mime_type": mime}
        )
        if not _TAG.search(prompt):
            prompt = f"<FIRST_FRAME> {prompt}"  # an untagged image may be ignored
    blocks.append({"type": "text", "text": prompt})
    fmt: dict[str, Any] = {"type": "video", "delivery": "uri", "aspect_ratio": ratio}
    if res is not None:
        fmt["resolution"] = res
    fmt["duration"] = f"{seconds}s"
    body: dict[str, Any] = {"model": model, "input": blocks, "background": True}
    if previous is not None:
        body["previous_interaction_id"] = previous
    body["response_format"] = fmt
    if previous is None:
        task = "image_to_video" if image is not None else "text_to_video"
        body["generation_config"] = {"video_config": {"task": task}}
    body = deep_merge(body, _allowed(request.metadata))
    return _settle(body, model, fmt, seconds, ratio, res, tuple(dropped))


def _allowed(metadata: Any) -> dict[str, Any]:
    extra = {k: v for k, v in clean_metadata(metadata).items() if k not in _RESERVED}
    config = extra.get("generation_config")
    if isinstance(config, dict) and isinstance(config.get("video_config"), dict):
        # any other key there is silently ignored upstream while a full 10 s clip is billed
        video = {k: v for k, v in config["video_config"].items() if k == "task"}
        extra["generation_config"] = {**config, "video_config": video}
    return extra


def _settle(
    body: dict[str, Any],
    model: str,
    ours: dict[str, Any],
    seconds: int,
    ratio: str,
    res: str | None,
    dropped: tuple[str, ...],
) -> Native:
    """Undo what metadata may not change, and report what actually goes upstream."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        fmt = body["response_format"] = dict(ours)
    fmt["type"] = "video"
    fmt["delivery"] = "uri"  # inline answers are capped near 4 MB; `data` is still read
    if fmt.get("aspect_ratio") not in RATIOS:
        fmt["aspect_ratio"] = ratio
    if preview(model) or ("resolution" in fmt and fmt["resolution"] not in PIXELS):
        fmt.pop("resolution", None)
    found = _DURATION.match(fmt["duration"]) if isinstance(fmt.get("duration"), str) else None
    low, high = SECONDS
    if found and low <= float(found[1]) <= high:
        seconds = round(float(found[1]))
    else:
        fmt["duration"] = f"{seconds}s"  # a number is a 400; out of bounds too
    body["background"] = True
    sent_res = fmt.get("resolution") or "720p"
    return Native(body, seconds, pixel_size(fmt["aspect_ratio"], sent_res), dropped)
