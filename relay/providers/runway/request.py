"""Runway's create bodies as pure functions (spec/providers/runway.md).

One JSON body per endpoint, camelCase. `ratio` is a pixel size from the model's list for that
endpoint and `duration` a JSON integer. The inputs arrive already in a form Runway takes (an
https URL, a data URI or a runway:// URI: inputs.py decides which), so everything here is pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.domain import Size, VideoRequest
from relay.providers.base import split_frames
from relay.providers.errors import Rejected
from relay.providers.normalize import clean_metadata, deep_merge, nominal_size, tier
from relay.providers.runway.models import (
    I2V,
    MAX_REFERENCE_IMAGES,
    SEED_MAX,
    T2V,
    V2V,
    Model,
    duration,
    model_of,
    pick_ratio,
)

# a remix's source is the relay's to choose, as is everything CONTROLLED_KEYS names
_NOT_FROM_METADATA = {"x-runway-version"}  # beside normalize's CONTROLLED_KEYS
_REMIX_SOURCE = ("videoUri", "promptVideo")


@dataclass(frozen=True)
class Inputs:
    """The media a body names, each already an https URL, a data URI or a runway:// URI."""

    first: str | None = None
    last: str | None = None
    references: tuple[str, ...] = ()
    videos: tuple[str, ...] = ()
    audios: tuple[str, ...] = ()


@dataclass(frozen=True)
class Native:
    endpoint: str
    body: dict[str, Any]
    seconds: str  # what went upstream, metadata included
    size: str
    dropped: tuple[str, ...]  # relay hints this model has no field for (logged, not sent)


def endpoint(request: VideoRequest) -> str:
    """An input image goes to image_to_video; anything else is text_to_video."""
    return I2V if request.images else T2V


def refusal(request: VideoRequest, model_name: str) -> str | None:
    """Why this model cannot take the request (Runway would answer 400), or None."""
    if request.remix_of is not None:
        return None
    model = model_of(model_name)
    frames = split_frames(request.images)
    path = endpoint(request)
    if path not in model.endpoints:
        if path == T2V and I2V in model.endpoints:
            return f"{model_name} requires an input image (runway has no text_to_video for it)"
        return f"{model_name} cannot start from {'an image' if path == I2V else 'a prompt'}"
    if frames.last is not None and not model.last_frame:
        return f"{model_name} does not take a last frame on runway"
    if frames.last is not None and frames.first is None:
        return "runway takes a last frame only together with a first frame"
    if frames.references and not model.references:
        return f"{model_name} does not take reference images on runway"
    if frames.references and (frames.first is not None or frames.last is not None):
        return "runway cannot combine reference images with a first or last frame"
    if len(frames.references) > MAX_REFERENCE_IMAGES:
        return f"runway takes at most {MAX_REFERENCE_IMAGES} reference images"
    if request.media and not model.references:
        return f"{model_name} does not take reference video or audio on runway"
    return None


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def prompt_text(prompt: str, model: Model, path: str) -> str | None:
    """The promptText to send, None where an empty one may be left out; a prompt over the
    model's limit (counted in UTF-16 code units, as Runway counts) is refused before any call."""
    if not prompt.strip():
        if path in model.prompt_required or path == V2V:
            raise Rejected(f"runway needs a prompt for {model.name} ({path})", param="prompt")
        return None
    limit = model.prompt_limit
    if limit is not None and utf16_units(prompt) > limit:
        raise Rejected(
            f"runway takes a prompt of at most {limit} characters (UTF-16 code units) "
            f"with {model.name}",
            param="prompt",
        )
    return prompt


def build(request: VideoRequest, model_name: str, inputs: Inputs) -> Native:
    """The body of POST /v1/{endpoint} for the upstream `model_name`."""
    model = model_of(model_name)
    path = endpoint(request)
    body: dict[str, Any] = {"model": model_name}
    text = prompt_text(request.prompt, model, path)
    if text is not None:
        body["promptText"] = text
    if inputs.references:
        body["promptImage"] = [{"uri": uri} for uri in inputs.references]  # no position
    elif inputs.last is not None:
        body["promptImage"] = [
            {"uri": inputs.first, "position": "first"},
            {"uri": inputs.last, "position": "last"},
        ]
    elif inputs.first is not None:
        body["promptImage"] = inputs.first
    size = request.dimensions
    ratios = model.ratios.get(path, ())
    if ratios:
        body["ratio"] = pick_ratio(size, ratios)
        reported = body["ratio"].replace(":", "x")
    elif model.resolution:
        high = tier(size) in ("1080p", "4k")
        body["resolution"] = "1080P" if high else "720P"
        reported = str(size) if size.short_side else _pixels(size, 1080 if high else 720)
    else:
        reported = str(size) if size.short_side else _pixels(size, 720)
    seconds = duration(model, request.duration)
    body["duration"] = seconds
    if inputs.videos:
        body["referenceVideos"] = [{"uri": uri} for uri in inputs.videos]
    if inputs.audios:
        body["referenceAudio"] = [{"uri": uri} for uri in inputs.audios]
    dropped = _hints(request, model, body)
    body = deep_merge(body, clean(request.metadata))
    return Native(path, body, _sent_seconds(body, seconds), _sent_size(body, reported), dropped)


def remix_body(request: VideoRequest, model_name: str, video_uri: str) -> dict[str, Any]:
    """The body of POST /v1/video_to_video: the remix prompt over the source clip, whose length
    and shape the result keeps (so no duration or ratio goes with it)."""
    model = model_of(model_name)
    body: dict[str, Any] = {"model": model_name, "videoUri": video_uri}
    body["promptText"] = prompt_text(request.prompt, model, V2V)
    _hints(request, model, body)
    extra = {k: v for k, v in clean(request.metadata).items() if k not in _REMIX_SOURCE}
    return deep_merge(body, extra)


def _hints(request: VideoRequest, model: Model, body: dict[str, Any]) -> tuple[str, ...]:
    """negative_prompt, seed and generate_audio where the model has a field for them; the names
    of those dropped."""
    dropped = []
    if request.negative_prompt is not None:
        if model.negative:
            body["negativePrompt"] = request.negative_prompt
        else:
            dropped.append("negative_prompt")
    if request.seed is not None:
        if not model.seed:
            dropped.append("seed")
        elif not 0 <= request.seed <= SEED_MAX:
            raise Rejected(f"runway takes a seed from 0 to {SEED_MAX}", param="seed")
        else:
            body["seed"] = request.seed
    if request.generate_audio is not None:
        if model.audio:
            body["audio"] = request.generate_audio
        else:
            dropped.append("generate_audio")
    unused = ("enhance_prompt", "person_generation")
    dropped += [name for name in unused if getattr(request, name) is not None]
    return tuple(dropped)


def clean(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return clean_metadata(metadata, _NOT_FROM_METADATA)


def _pixels(size: Size, short: int) -> str:
    """WxH of a bare ratio at a short side (16:9 at 720 is 1280x720)."""
    assert size.ratio is not None  # only a bare ratio has no pixels of its own
    return nominal_size(*size.ratio, short)


def _sent_seconds(body: dict[str, Any], computed: int) -> str:
    sent = body.get("duration")
    if isinstance(sent, int) and not isinstance(sent, bool) and sent > 0:
        return str(sent)
    return str(computed)


def _sent_size(body: dict[str, Any], reported: str) -> str:
    ratio = body.get("ratio")
    parsed = Size.parse(ratio) if isinstance(ratio, str) else None
    if parsed is not None and parsed.ratio is not None:
        # Runway's ratio is a pixel size written W:H
        return f"{parsed.ratio[0]}x{parsed.ratio[1]}"
    return reported
