"""Client request -> the submit body (`CVSync2AsyncSubmitTask`), as pure functions.

The req_key is picked from the upstream model (a family or a real key, models.py), the number of
images the body carries and the size's tier. Jimeng takes image URLs or raw base64, never both in
one body; the ratio of an image-to-video job comes from the image, so no aspect_ratio goes with it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from relay.domain import Image, VideoRequest
from relay.providers.base import split_frames
from relay.providers.errors import Rejected, Unsupported
from relay.providers.jimeng.models import (
    FRAMES,
    IMAGE_TYPES,
    MAX_IMAGE_BYTES,
    MAX_PROMPT,
    ReqKey,
    choose_key,
    frames_for,
    size_of,
    wanted_tier,
)
from relay.providers.normalize import merge_metadata, snap_ratio, whole_seconds

log = logging.getLogger("relay.providers.jimeng")

IMAGE_FIELDS = ("image_urls", "binary_data_base64")
DROPPED = ("negative_prompt", "generate_audio", "enhance_prompt", "person_generation")


@dataclass(frozen=True)
class SubmitBody:
    body: dict[str, Any]
    req_key: str
    seconds: str  # what was asked upstream, as the video object reports it
    size: str


def frames(images: Sequence[Image]) -> list[Image]:
    """[first] or [first, last]; reference images are not Jimeng's (refused by `features`)."""
    found = split_frames(tuple(images))
    if found.last is not None and found.first is None:
        raise Unsupported("jimeng needs a first frame to go with a last frame")
    return [i for i in (found.first, found.last) if i is not None]


def image_count(request: VideoRequest) -> int:
    """How many images the native body will carry: metadata's lists replace the request's."""
    for key in IMAGE_FIELDS:
        given = request.metadata.get(key)
        if isinstance(given, list):
            return len(given)
    return len(frames(request.images))


def req_key_for(request: VideoRequest, model: str, default_tier: str) -> ReqKey:
    """The req_key this request runs on; Unsupported when the model has no mode for it."""
    return choose_key(model, image_count(request), wanted_tier(request.dimensions, default_tier))


def build_submit(
    request: VideoRequest, model: str, images: Sequence[Image], default_tier: str
) -> SubmitBody:
    """The submit body; `images` are the request's, with URLs already fetched where bytes are
    needed (Jimeng takes URLs or raw base64 but never both in one request)."""
    if len(request.prompt) > MAX_PROMPT:
        raise Rejected(f"prompt: Jimeng accepts at most {MAX_PROMPT} characters", param="prompt")
    body: dict[str, Any] = {"req_key": "", "prompt": request.prompt}
    chosen = frames(images)
    if chosen and all(i.url is not None for i in chosen):
        body["image_urls"] = [i.url for i in chosen]
    elif chosen and all(i.data is not None for i in chosen):
        body["binary_data_base64"] = [raw_base64(i) for i in chosen]
    elif chosen:
        raise Rejected(
            "image URLs and image data cannot be combined in one request", param="input_reference"
        )
    body["seed"] = request.seed if request.seed is not None else -1
    body["frames"] = frames_for(request.duration)
    _log_dropped(request)
    body = merge_metadata(body, request.metadata)
    given = _image_lists(body)
    count = max((len(v) for v in given.values()), default=0)
    if len(given) > 1:
        raise Rejected(
            "image_urls and binary_data_base64 cannot be combined", param="input_reference"
        )
    if "binary_data_base64" in given:
        body["binary_data_base64"] = [strip_data_prefix(v) for v in given["binary_data_base64"]]
    key = choose_key(model, count, wanted_tier(request.dimensions, default_tier))
    body["req_key"] = key.name
    ratio = snap_ratio(request.dimensions, key.ratios)
    if count == 0:
        asked = body.get("aspect_ratio")
        if asked in key.ratios:
            ratio = str(asked)
        elif not asked:  # never an empty string: leave it out or send a real ratio
            body["aspect_ratio"] = ratio
    else:
        body.pop("aspect_ratio", None)  # the image decides the ratio
    seconds = _seconds(body.get("frames"), request.duration)
    return SubmitBody(body, key.name, seconds, size_of(key, ratio))


def raw_base64(image: Image) -> str:
    assert image.data is not None
    if len(image.data) > MAX_IMAGE_BYTES:
        raise Rejected("Jimeng accepts images of at most 4.7 MB", param="input_reference")
    if image.mime not in IMAGE_TYPES:
        raise Rejected("Jimeng accepts JPEG or PNG images only", param="input_reference")
    return image.base64()


def strip_data_prefix(value: Any) -> Any:
    """Jimeng wants raw base64: a `data:...;base64,` prefix makes the image unreadable."""
    if isinstance(value, str) and value.startswith("data:") and ";base64," in value:
        return value.split(";base64,", 1)[1]
    return value


def _image_lists(body: Mapping[str, Any]) -> dict[str, list[Any]]:
    found = {k: body[k] for k in IMAGE_FIELDS if isinstance(body.get(k), list) and body[k]}
    for key in IMAGE_FIELDS:
        if key in body and key not in found:
            raise Rejected(f"metadata.{key} must be a non-empty list", param=f"metadata.{key}")
    return found


def _seconds(frames_sent: Any, asked: int) -> str:
    for seconds, count in FRAMES.items():
        if frames_sent == count:
            return str(seconds)
    if isinstance(frames_sent, int) and not isinstance(frames_sent, bool) and frames_sent > 1:
        return whole_seconds((frames_sent - 1) / 24) or str(asked)
    return str(asked)


def _log_dropped(request: VideoRequest) -> None:
    dropped = [name for name in DROPPED if getattr(request, name) is not None]
    if dropped:
        log.debug("jimeng has no field for %s: dropped", ", ".join(dropped))
