"""Which inputs a Wan 2.7 / 3.0 model takes (spec/providers/dashscope-wan27.md), pure and
before any network: the client's images and media as `media[]` items of the model's family,
and the page's rules on which items go together.

Images are first/last frames on i2v and Wan 3.0, references on r2v and videoedit (a first frame
there only when the client names the role); a video is the i2v `first_clip`, the videoedit
`video`, else a `reference_video`; an audio is the t2v `input.audio_url` (not an item), the i2v
`driving_audio`, or a Wan 3.0 `reference_audio`. A metadata `input.media` list replaces the
built one and is checked by the same rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.domain import Image, Media, VideoRequest
from relay.providers.dashscope.wan27.models import (
    FRAMES,
    I2V_COMBINATIONS,
    R2V_REFERENCES,
    REFERENCES,
    Spec,
    is_new_protocol,
    spec_for,
)

_VIDEO_TYPE = {"i2v": "first_clip", "videoedit": "video"}  # else reference_video
_AUDIO_TYPE = {"i2v": "driving_audio", "aio": "reference_audio"}  # t2v: input.audio_url


@dataclass(frozen=True)
class Item:
    type: str  # a media[].type
    source: Image | Media


def target_model(request: VideoRequest, model: str, image_model: str) -> str:
    """The model that runs the job: a t2v model asked with an image hands it to the operator's
    `wan27_image_model` (refusal() has checked there is one)."""
    if request.images and spec_for(model).family == "t2v" and image_model:
        return image_model
    return model


def refusal(
    request: VideoRequest, model: str, *, image_model: str = "", remix_model: str = ""
) -> str | None:
    """Why this new-protocol model cannot take the request, in words for the client."""
    if request.remix_of is not None:
        return remix_refusal(remix_model)
    spec = spec_for(model)
    if request.images and spec.family == "t2v":
        if not image_model:
            return (
                f"{model} is text-to-video: it takes no input image (map image jobs to "
                "wan2.7-i2v in model_map, or set the channel's options.wan27_image_model)"
            )
        if not is_new_protocol(image_model) or spec_for(image_model).family == "t2v":
            return f"options.wan27_image_model {image_model!r} is not a Wan 2.7/3.0 image model"
        model, spec = image_model, spec_for(image_model)
    given = metadata_media(request.metadata)
    if given is not None:
        types = [str(item.get("type")) for item in given]
    else:
        planned = plan(request, spec, model)
        if isinstance(planned, str):
            return planned
        types = [item.type for item in planned]
    return combination_refusal(types, spec, model)


def plan(request: VideoRequest, spec: Spec, model: str) -> list[Item] | str:
    """The client's images and media as media items of this family, or why it cannot take one."""
    items: list[Item] = []
    # as split_frames: a role-less image is the first frame unless one is named, then the last
    first_free = all(image.role != "first_frame" for image in request.images)
    for image in request.images:
        role = image.role
        if role is None and spec.family in ("r2v", "videoedit"):
            role = "reference_image"  # reference models: a plain image is a reference
        elif role is None:
            role = "first_frame" if first_free else "last_frame"
            first_free = False
        items.append(Item(role, image))
    audio = [m for m in request.media if m.kind == "audio"]
    for media in request.media:
        if media.kind == "video":
            items.append(Item(_VIDEO_TYPE.get(spec.family, "reference_video"), media))
        elif spec.family != "t2v":  # t2v audio is input.audio_url, not a media item
            if spec.family not in _AUDIO_TYPE:
                return f"{model} ({spec.label}) takes no audio"
            items.append(Item(_AUDIO_TYPE[spec.family], media))
    if spec.family == "t2v" and len(audio) > 1:
        return f"{model} takes one driving audio (input.audio_url) at most"
    for item in items:
        if item.type not in spec.media:
            what = item.type.replace("_", " ")
            return f"{model} ({spec.label}) takes no {what}"
    return items


def combination_refusal(types: list[str], spec: Spec, model: str) -> str | None:
    """The page's per-family rules on which media go together and how many."""
    counts = Counter(types)
    unknown = sorted(t for t in counts if t not in spec.media)
    if unknown:
        return f"{model} ({spec.label}) takes no media of type {unknown[0]!r}"
    for kind, cap in (spec.max_items or {}).items():
        if counts[kind] > cap:
            return f"{model} takes at most {cap} {kind.replace('_', ' ')} item(s)"
    if spec.family == "i2v":
        if not types:
            return f"{model} is image-to-video: it needs a first frame image or a first clip video"
        if any(n > 1 for n in counts.values()) or frozenset(counts) not in I2V_COMBINATIONS:
            return (
                f"{model} takes a first frame (with a last frame and/or driving audio), or a "
                "first clip video (with a last frame); got " + " + ".join(sorted(counts))
            )
    if spec.family == "r2v":
        low, high = R2V_REFERENCES
        references = counts["reference_image"] + counts["reference_video"]
        if not low <= references <= high:
            return f"{model} takes {low} to {high} reference images or videos (got {references})"
    if spec.family == "videoedit" and counts["video"] != 1:
        return f"{model} edits exactly one video (got {counts['video']})"
    if spec.family == "aio":
        frames = sorted(t for t in counts if t in FRAMES)
        mixed = sorted(t for t in counts if t in REFERENCES)
        if frames and mixed:
            return (
                f"{model} takes first/last frames or references, not both "
                f"({frames[0]} with {mixed[0]})"
            )
        if counts["last_frame"] and not counts["first_frame"]:
            return f"{model} takes a last frame only together with a first frame"
    return None


def remix_refusal(remix_model: str) -> str | None:
    if not remix_model:
        return "provider 'dashscope' does not support remix (set options.remix_model)"
    if not is_new_protocol(remix_model) or spec_for(remix_model).family != "videoedit":
        return f"options.remix_model {remix_model!r} is not a Wan video edit model"
    return None


def metadata_media(metadata: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """A metadata `input.media` list (it replaces the built one), or None."""
    given = metadata.get("input")
    media = given.get("media") if isinstance(given, Mapping) else None
    if not isinstance(media, list):
        return None
    return [item if isinstance(item, Mapping) else {} for item in media]
