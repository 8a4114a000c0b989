"""The client's request as a DashScope create body, and what a model refuses (pure functions).

Both take the request and the upstream model name (the relay mapped it): the model's row in
models.py says what it can take.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.domain import Image, Size, VideoRequest
from relay.providers.base import split_frames
from relay.providers.dashscope.models import (
    TIER_NAMES,
    Spec,
    parse_wh,
    pick_tier,
    snap_size,
    spec_for,
)
from relay.providers.errors import Rejected
from relay.providers.normalize import merge_metadata, snap_seconds

log = logging.getLogger("relay.providers.dashscope")

SEED_MAX = 2147483647
DEFAULT_SECONDS = 5  # what DashScope produces when `duration` is left out


@dataclass(frozen=True)
class CreateBody:
    body: dict[str, Any]
    seconds: str  # whole-number seconds actually asked for
    size: str  # WxH actually asked for (i2v: the tier in the client's aspect)
    oss: bool  # an input is an oss:// temporary URL (needs X-DashScope-OssResourceResolve)


def refusal(request: VideoRequest, model: str) -> str | None:
    """Why this model cannot take the request, in words for the client; None when it can."""
    spec = spec_for(model)
    frames = split_frames(request.images)
    first, last = frames.first, frames.last
    given = metadata_inputs(request.metadata)
    if frames.references:
        return f"{model} takes no reference images (wan2.7-r2v and Wan 3.0 models do)"
    if any(m.kind == "video" for m in request.media):
        return f"{model} takes no reference video (wan2.7 and Wan 3.0 models take videos)"
    if spec.kind == "t2v" and (first or last):
        return f"{model} is text-to-video: it takes no input image (use an i2v model)"
    if spec.kind == "i2v":
        if last is not None:
            return f"{model} takes a first frame only (first and last frames need a kf2v model)"
        if first is None and not given & {"img_url", "template"}:
            return f"{model} is image-to-video: it needs an input image"
    missing_first = first is None and "first_frame_url" not in given
    missing_last = last is None and "last_frame_url" not in given
    if spec.kind == "kf2v" and (missing_first or missing_last):
        return f"{model} needs both a first and a last frame image"
    audio = [m for m in request.media if m.kind == "audio"]
    if audio and not spec.takes_audio_url:
        return f"{model} takes no reference audio (Wan 2.5 and 2.6 models do)"
    if len(audio) > 1:
        return f"{model} takes at most one reference audio"
    return None


def shared_parameters(request: VideoRequest, prompt_extend: bool) -> dict[str, Any]:
    """The parameters both protocols take alike: prompt_extend (the channel's option, which
    enhance_prompt overrides), no watermark, the seed."""
    extend = request.enhance_prompt if request.enhance_prompt is not None else prompt_extend
    params: dict[str, Any] = {"prompt_extend": extend, "watermark": False}
    if request.seed is not None:
        if not 0 <= request.seed <= SEED_MAX:
            raise Rejected(f"seed must be between 0 and {SEED_MAX}", param="seed")
        params["seed"] = request.seed
    return params


def create_body(request: VideoRequest, model: str, *, prompt_extend: bool) -> CreateBody:
    """The create body; `prompt_extend` is the channel's option (enhance_prompt overrides it)."""
    spec = spec_for(model)
    inputs: dict[str, Any] = {"prompt": request.prompt}
    if request.negative_prompt is not None:
        inputs["negative_prompt"] = request.negative_prompt
    inputs.update(image_inputs(request.images, spec))
    for media in request.media:
        if media.kind == "audio":
            inputs["audio_url"] = media.url
    params: dict[str, Any] = {}
    size = request.dimensions
    tier = pick_tier(size, spec)
    if spec.kind == "t2v":
        width, height = snap_size(size, tier)
        params["size"] = f"{width}*{height}"
    else:
        params["resolution"] = tier  # the image sets the aspect; i2v takes no `size`
    if not spec.fixed_duration:  # a fixed-5 s model is sent no duration at all
        params["duration"] = snap_seconds(request.duration, spec.durations)
    params.update(shared_parameters(request, prompt_extend))
    if request.generate_audio is not None:
        if spec.audio_switch:
            params["audio"] = request.generate_audio
        else:
            log.debug("generate_audio dropped: %s cannot switch its soundtrack", model)
    if request.person_generation is not None:
        log.debug("person_generation dropped: DashScope has no such field")
    body = merge_metadata({"model": model, "input": inputs, "parameters": params}, request.metadata)
    return CreateBody(
        body,
        requested_seconds(body, spec),
        requested_size(body, spec, size),
        uses_oss(body),
    )


def image_inputs(images: tuple[Image, ...], spec: Spec) -> dict[str, str]:
    """URLs go as they are, bytes as a data URL (DashScope takes both in the same field)."""
    frames = split_frames(images)
    first, last = frames.first, frames.last
    if spec.kind == "kf2v":
        found = {"first_frame_url": first, "last_frame_url": last}
        return {k: v.url_or_data_url() for k, v in found.items() if v is not None}
    if last is not None:
        raise Rejected(f"{spec.kind} models take no last frame", param="input_reference")
    return {"img_url": first.url_or_data_url()} if first is not None else {}


def metadata_inputs(metadata: Mapping[str, Any]) -> set[str]:
    """The `input` keys the client supplies through metadata (an image URL, a template)."""
    given = metadata.get("input")
    return {k for k, v in given.items() if v} if isinstance(given, Mapping) else set()


def requested_seconds(body: Mapping[str, Any], spec: Spec) -> str:
    duration = _params(body).get("duration")
    if isinstance(duration, int) and not isinstance(duration, bool) and duration > 0:
        return str(duration)
    return str(spec.durations[0] if spec.fixed_duration else DEFAULT_SECONDS)


def requested_size(body: Mapping[str, Any], spec: Spec, asked: Size) -> str:
    params = _params(body)
    if spec.kind == "t2v":
        found = parse_wh(params.get("size"))
        if found is None:  # left out through metadata: the model's default size
            found = snap_size(Size(ratio=(16, 9)), spec.default_tier)
        return f"{found[0]}x{found[1]}"
    resolution = params.get("resolution")
    tier = resolution if resolution in TIER_NAMES else spec.default_tier
    width, height = snap_size(asked, tier)
    return f"{width}x{height}"


def uses_oss(body: Mapping[str, Any]) -> bool:
    """Whether any input URL, at any depth (the new protocol's `media[].url`,
    `reference_voice`), is an `oss://` temporary URL."""

    def found(value: Any) -> bool:
        if isinstance(value, str):
            return value.startswith("oss://")
        if isinstance(value, Mapping):
            return any(found(v) for v in value.values())
        if isinstance(value, list):
            return any(found(v) for v in value)
        return False

    return found(body.get("input"))


def _params(body: Mapping[str, Any]) -> Mapping[str, Any]:
    params = body.get("parameters")
    return params if isinstance(params, Mapping) else {}
