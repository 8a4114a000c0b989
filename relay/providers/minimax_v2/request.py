"""MiniMax V2 create bodies as pure functions (spec/providers/minimax-v2.md).

Everything goes into `content[]`: the prompt as the one text item, then typed media items with
roles. `resolution` and `duration` are always sent (V2 has no defaults), and `ratio` is
concrete unless an image fixes the geometry (`adaptive` is refused on a text-only request).
Which URL each input is sent as is the adapter's call (`hosting`); the body is built here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from relay.domain import Image, Media, VideoRequest
from relay.providers.base import split_frames
from relay.providers.errors import Rejected
from relay.providers.minimax_v2.models import (
    MAX_AUDIO_BYTES,
    MAX_BODY_BYTES,
    MAX_IMAGE_BYTES,
    MAX_MEDIA_ITEMS,
    MAX_PROMPT,
    MAX_REFERENCE_IMAGES,
    MAX_REFERENCE_MEDIA,
    MAX_SECONDS,
    MAX_VIDEO_BYTES,
    MIN_SECONDS,
    RATIOS,
    RESOLUTIONS,
    model_of,
    pixel_size,
    ratio,
    resolution,
)
from relay.providers.normalize import clamp_seconds, clean_metadata, deep_merge

FRAME_ROLES = frozenset({"first_frame", "last_frame"})
REFERENCE_ROLES = frozenset({"reference_image", "reference_video", "reference_audio"})
_LIMITS = {"image": MAX_IMAGE_BYTES, "video": MAX_VIDEO_BYTES, "audio": MAX_AUDIO_BYTES}
# room in the 64 MB body for everything but inline data URLs (the text, the JSON around them)
_INLINE_BUDGET = MAX_BODY_BYTES - 1024 * 1024
_HINTS = ("negative_prompt", "seed", "generate_audio", "enhance_prompt", "person_generation")


@dataclass(frozen=True)
class Input:
    """One media item of `content[]`: its kind, its role, and the client's image or media."""

    kind: Literal["image", "video", "audio"]
    role: str
    source: Image | Media

    @property
    def param(self) -> str:
        return self.source.param if isinstance(self.source, Media) else "input_reference"


@dataclass(frozen=True)
class Native:
    body: dict[str, Any]
    seconds: int  # what went upstream, metadata included
    size: str
    dropped: tuple[str, ...]  # relay hints V2 has no field for (logged, not sent)


def inputs(request: VideoRequest) -> tuple[Input, ...]:
    """The request's images and media in content order: first frame, last frame, reference
    images, then reference videos and audio as the client listed them."""
    frames = split_frames(request.images)
    found: list[Input] = []
    if frames.first is not None:
        found.append(Input("image", "first_frame", frames.first))
    if frames.last is not None:
        found.append(Input("image", "last_frame", frames.last))
    found += [Input("image", "reference_image", i) for i in frames.references]
    found += [Input(m.kind, f"reference_{m.kind}", m) for m in request.media]
    return tuple(found)


def refusal(request: VideoRequest, model_name: str) -> str | None:
    """Why the model cannot take the request's inputs (MiniMax would answer 400), or None."""
    frame_images = [i for i in request.images if i.role != "reference_image"]
    found = inputs(request)
    references = [i for i in found if i.role in REFERENCE_ROLES]
    count = {kind: sum(i.kind == kind for i in references) for kind in _LIMITS}
    if references and not model_of(model_name).references:
        return f"{model_name} takes first and last frames only: no reference images, video or audio"
    if len(frame_images) > 2:
        return "minimax-v2 takes at most two frame images (a first and a last frame)"
    if frame_images and references:
        return "minimax-v2 cannot mix first/last frames with reference images, video or audio"
    if count["image"] > MAX_REFERENCE_IMAGES:
        return f"minimax-v2 takes at most {MAX_REFERENCE_IMAGES} reference images"
    for kind in ("video", "audio"):
        if count[kind] > MAX_REFERENCE_MEDIA:
            return f"minimax-v2 takes at most {MAX_REFERENCE_MEDIA} reference {kind} clips"
    if len(references) > MAX_MEDIA_ITEMS:
        return f"minimax-v2 takes at most {MAX_MEDIA_ITEMS} reference items in all"
    if count["audio"] and not (count["image"] or count["video"]):
        return "minimax-v2 needs a reference image or video beside a reference audio"
    return None


def check_sizes(found: Sequence[Input]) -> None:
    """The page's per-file limits, for inputs the client sent as bytes (URLs are MiniMax's to
    measure)."""
    for item in found:
        data = item.source.data
        if data is not None and len(data) > _LIMITS[item.kind]:
            mb = _LIMITS[item.kind] // (1024 * 1024)
            raise Rejected(
                f"{item.param}: MiniMax takes a reference {item.kind} of at most {mb} MB",
                param=item.param,
            )


def to_host(found: Sequence[Input], *, everything: bool = False) -> frozenset[int]:
    """Which inputs sent as bytes the relay must serve at its own URL: audio always (the page
    documents data URLs for images and video only), then the largest of the rest until the
    data URLs fit in the 64 MB body; `everything` hosts them all (a body kept in the task's
    state must stay small)."""
    as_bytes = [(n, i) for n, i in enumerate(found) if i.source.url is None]
    if everything:
        return frozenset(n for n, _ in as_bytes)
    hosted = {n for n, i in as_bytes if i.kind == "audio"}
    inline = sorted(
        ((_data_url_length(i), n) for n, i in as_bytes if n not in hosted), reverse=True
    )
    total = sum(length for length, _ in inline)
    for length, n in inline:
        if total <= _INLINE_BUDGET:
            break
        hosted.add(n)
        total -= length
    return frozenset(hosted)


def _data_url_length(item: Input) -> int:
    data, mime = item.source.data or b"", item.source.mime or ""
    return len(f"data:{mime};base64,") + 4 * math.ceil(len(data) / 3)


def check_prompt(prompt: str, param: str = "prompt") -> None:
    if not prompt.strip():
        raise Rejected("MiniMax needs a non-empty prompt", param=param)
    if len(prompt) > MAX_PROMPT:
        raise Rejected(f"MiniMax takes a prompt of at most {MAX_PROMPT} characters", param=param)


def build(
    request: VideoRequest, model_name: str, default_resolution: str, urls: Sequence[str]
) -> Native:
    """The body of `POST /v2/video_generation`; `urls[n]` is what inputs(request)[n] is sent as."""
    check_prompt(request.prompt)
    model = model_of(model_name)
    found = inputs(request)
    content: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]
    content += [item(i.kind, i.role, url) for i, url in zip(found, urls, strict=True)]
    tier = resolution(model, request.dimensions, default_resolution)
    body: dict[str, Any] = {
        "model": model_name,
        "content": content,
        "resolution": tier,
        "duration": clamp_seconds(request.duration, MIN_SECONDS, MAX_SECONDS),
        # an image fixes the geometry; anything else needs a concrete ratio
        "ratio": "adaptive" if any(i.kind == "image" for i in found) else ratio(request.dimensions),
    }
    dropped = tuple(name for name in _HINTS if getattr(request, name) is not None)
    metadata = clean_metadata(request.metadata)
    if "content" in metadata:  # a list replaces the built array, so it must stand on its own
        check_content(metadata["content"])
    body = deep_merge(body, metadata)
    sent = body.get("duration")
    seconds = sent if type(sent) is int else body_duration(request)
    return Native(body, seconds, reported_size(body, request, tier), dropped)


def item(kind: str, role: str, url: str) -> dict[str, Any]:
    key = f"{kind}_url"
    return {"type": key, key: {"url": url}, "role": role}


def body_duration(request: VideoRequest) -> int:
    return clamp_seconds(request.duration, MIN_SECONDS, MAX_SECONDS)


def check_content(value: Any) -> None:
    """metadata.content: objects, one non-empty text item at least, and frame roles not mixed
    with reference roles."""
    param = "metadata.content"
    if not isinstance(value, list) or not all(isinstance(i, Mapping) for i in value):
        raise Rejected("metadata.content must be a list of objects", param=param)
    texts = [i.get("text") for i in value if i.get("type") == "text"]
    if not any(isinstance(t, str) and t.strip() for t in texts):
        raise Rejected(
            "metadata.content replaces the whole content array, so it needs a text item",
            param=param,
        )
    for text in texts:
        if isinstance(text, str):
            check_prompt(text, param)
    roles = {i.get("role") for i in value}
    if roles & FRAME_ROLES and roles & REFERENCE_ROLES:
        raise Rejected(
            "metadata.content cannot mix first/last frames with reference items", param=param
        )


def reported_size(body: Mapping[str, Any], request: VideoRequest, tier: str) -> str:
    """The tier's nominal size in the ratio sent; with `adaptive` the output follows the input,
    so the requested size is the best guess."""
    sent_tier = body.get("resolution")
    tier = sent_tier if isinstance(sent_tier, str) and sent_tier in RESOLUTIONS else tier
    sent_ratio = body.get("ratio")
    if isinstance(sent_ratio, str) and sent_ratio in RATIOS:
        return pixel_size(tier, sent_ratio)
    if request.dimensions.width:
        return str(request.dimensions)
    return pixel_size(tier, ratio(request.dimensions))


def context_ir_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """`POST /v2/h3_context_ir`: the generation's content, duration and ratio."""
    return {k: body[k] for k in ("content", "duration", "ratio") if k in body}


def with_prompt(body: Mapping[str, Any], prompt: str) -> dict[str, Any]:
    """The generation body with the expanded prompt as its (first) text item."""
    content = [dict(i) for i in body.get("content", []) if isinstance(i, Mapping)]
    for entry in content:
        if entry.get("type") == "text":
            entry["text"] = prompt
            break
    return {**body, "content": content}
