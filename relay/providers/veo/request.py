"""Veo's create request as pure functions (spec/providers/veo.md): what a model cannot take,
where each input image goes, and the predictLongRunning body."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from relay.domain import VideoRequest
from relay.providers.base import split_frames
from relay.providers.normalize import merge_metadata, snap_seconds, tier
from relay.providers.veo.models import (
    EIGHT_ONLY,
    MAX_REFERENCES,
    PIXELS,
    RATIOS,
    family,
    pixel_size,
    resolution,
)

Inline = dict[str, str]  # {"bytesBase64Encoded", "mimeType"}: the only image form the API takes

# Vertex AI takes these; the Gemini API is not to be sent them (whether it refuses is unconfirmed)
VERTEX_ONLY = (
    "seed",
    "generateAudio",
    "fps",
    "storageUri",
    "compressionQuality",
    "resizeMode",
    "pubsubTopic",
    "mask",
)


def refusal(request: VideoRequest, model: str) -> str | None:
    """Why Veo cannot take these images on this model, or None."""
    fam = family(model)
    roles = [image.role for image in request.images]
    frame_count = sum(r in (None, "first_frame", "last_frame") for r in roles)
    if roles.count("first_frame") > 1 or roles.count("last_frame") > 1 or frame_count > 2:
        return "veo takes one first frame and one last frame"
    placed = split_frames(request.images)
    if placed.last is not None and placed.first is None:
        return "veo needs a first frame to go with a last frame"
    if placed.references and not fam.reference_images:
        return f"{fam.name} ({model}) does not take reference images; Veo 3.1 does"
    if len(placed.references) > MAX_REFERENCES:
        return f"veo takes at most {MAX_REFERENCES} reference images"
    return None


def inline(data: bytes, mime: str) -> Inline:
    return {"bytesBase64Encoded": base64.b64encode(data).decode("ascii"), "mimeType": mime}


@dataclass(frozen=True)
class Native:
    body: dict[str, Any]
    seconds: int  # durationSeconds as it went upstream, metadata included
    size: str
    dropped: tuple[str, ...]  # relay hints and metadata keys the Gemini API is not sent


def build(
    request: VideoRequest,
    model: str,
    first: Inline | None = None,
    last: Inline | None = None,
    references: tuple[Inline, ...] = (),
) -> Native:
    """The body for `model` (the upstream name); images come already inlined."""
    fam = family(model)
    size = request.dimensions
    ratio = "9:16" if size.aspect < 1 else "16:9"
    res = resolution(fam, tier(size))
    if res in EIGHT_ONLY or references:
        duration = 8  # the API refuses anything else with these
    else:
        duration = snap_seconds(request.duration, fam.durations)
    instance: dict[str, Any] = {"prompt": request.prompt}
    if first is not None:
        instance["image"] = first
    if last is not None:
        instance["lastFrame"] = last
    if references:
        instance["referenceImages"] = [{"image": r, "referenceType": "asset"} for r in references]
    parameters: dict[str, Any] = {"aspectRatio": ratio, "durationSeconds": duration}
    if res is not None:
        parameters["resolution"] = res
    if request.negative_prompt is not None:
        parameters["negativePrompt"] = request.negative_prompt
    if request.enhance_prompt is not None:
        parameters["enhancePrompt"] = request.enhance_prompt
    if request.person_generation is not None:
        parameters["personGeneration"] = request.person_generation
    elif fam.person_default and (first or last or references):
        parameters["personGeneration"] = "allow_adult"
    parameters["sampleCount"] = 1
    hints = (("seed", request.seed), ("generate_audio", request.generate_audio))
    dropped = [name for name, value in hints if value is not None]  # Vertex AI only

    # a list would replace the whole instance (prompt and images with it): ignored
    extra = {k: v for k, v in request.metadata.items() if k != "instances"}
    body = merge_metadata({"instances": [instance], "parameters": parameters}, extra)
    sent = body.get("parameters")
    if not isinstance(sent, dict):
        sent = body["parameters"] = parameters
    sent["sampleCount"] = 1  # one task is one video
    for key in VERTEX_ONLY + (("resolution",) if not fam.resolutions else ()):
        if key in sent:
            sent.pop(key)
            dropped.append(f"parameters.{key}")
    return Native(body, *_reported(sent, duration, ratio, res), tuple(dropped))


def _reported(sent: dict[str, Any], duration: int, ratio: str, res: str | None) -> tuple[int, str]:
    """Seconds and WxH of what actually went upstream, after metadata had its say."""
    value = sent.get("durationSeconds")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    seconds = value if isinstance(value, int) and not isinstance(value, bool) else duration
    sent_ratio = sent.get("aspectRatio")
    sent_res = sent.get("resolution", res)
    return seconds, pixel_size(
        sent_ratio if sent_ratio in RATIOS else ratio,
        sent_res if sent_res in PIXELS else (res or "720p"),
    )
