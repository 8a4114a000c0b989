"""The Wan 2.7 / Wan 3.0 "new protocol" create and remix bodies
(spec/providers/dashscope-wan27.md): `input.media[]` in place of the 2.6 image fields,
`parameters.resolution` + `ratio` in place of `size`.

`media[].url` must be a URL: the page documents no `data:` URLs there. A client's http(s) URL
goes as it is; bytes (an upload, a data: URL) get a URL from the relay, which hosts them at
`{public_url}/v1/files/{token}` (relay/hosting.py). DashScope's own temporary upload (getPolicy,
then `oss://`) is not used: a hosted URL needs no second credential flow and works for every
provider alike. `oss://` URLs a client puts into metadata still get the resolve header.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from relay.domain import Image, Media, Size, VideoRequest
from relay.providers.dashscope.models import TIER_NAMES, pick_tier, snap_size
from relay.providers.dashscope.request import CreateBody, shared_parameters, uses_oss
from relay.providers.dashscope.wan27.models import FRAMES, RATIOS, Spec, spec_for
from relay.providers.dashscope.wan27.rules import metadata_media, plan
from relay.providers.errors import Rejected
from relay.providers.normalize import clamp_seconds, merge_metadata, snap_ratio

log = logging.getLogger("relay.providers.dashscope")

DEFAULT_SECONDS = 5
# 2.6 fields a new-protocol model must never get (the page: "no img_url, no size")
LEGACY_INPUTS = ("img_url", "first_frame_url", "last_frame_url", "reference_video_urls")

UrlOf = Callable[[Image | Media], Awaitable[str]]


async def create_body(
    request: VideoRequest, model: str, *, url_of: UrlOf, prompt_extend: bool
) -> CreateBody:
    """The create body; `url_of` gives the URL of an image or media item (the adapter's
    input_url: the client's URL, or the bytes hosted by the relay)."""
    spec = spec_for(model)
    check_metadata(request.metadata, model)  # before anything is hosted for a doomed body
    inputs: dict[str, Any] = {"prompt": request.prompt}
    if request.negative_prompt is not None:
        inputs["negative_prompt"] = request.negative_prompt
    if metadata_media(request.metadata) is None:  # else replaced: nothing to host
        planned = plan(request, spec, model)
        if isinstance(planned, str):  # refusal() said so already; a direct call gets a 400
            raise Rejected(planned, param="input_reference")
        media = [{"type": item.type, "url": await url_of(item.source)} for item in planned]
        if media:
            inputs["media"] = media
        if spec.family == "t2v":
            for audio in (m for m in request.media if m.kind == "audio"):
                inputs["audio_url"] = await url_of(audio)
    params: dict[str, Any] = {}
    size = request.dimensions
    if size.short_side is not None:  # a bare ratio sets only the ratio
        params["resolution"] = pick_tier(size, spec)
    _hints(request, params, spec, model, prompt_extend)
    body = merge_metadata({"model": model, "input": inputs, "parameters": params}, request.metadata)
    # duration and ratio depend on the final media list, which metadata may have replaced
    types = _types(body["input"].get("media"))
    final = body["parameters"]
    if spec.seconds is not None and "duration" not in final:
        low, high = spec.seconds
        if "reference_video" in types and spec.seconds_with_video:
            low, high = spec.seconds_with_video
        final["duration"] = clamp_seconds(request.duration, low, high)
    if spec.ratio and not FRAMES.intersection(types) and "ratio" not in final:
        final["ratio"] = snap_ratio(size, RATIOS)  # a frame sets the aspect
    return CreateBody(
        body,
        requested_seconds(body, request.duration),
        requested_size(body, spec, size),
        uses_oss(body),
    )


def remix_body(
    request: VideoRequest,
    model: str,
    source_url: str,
    source_size: str,
    source_seconds: str,
    *,
    prompt_extend: bool,
) -> CreateBody:
    """A video edit of the source's result: its tier, its sound kept, its length and size."""
    spec = spec_for(model)
    inputs: dict[str, Any] = {
        "prompt": request.prompt,
        "media": [{"type": "video", "url": source_url}],
    }
    if request.negative_prompt is not None:
        inputs["negative_prompt"] = request.negative_prompt
    source = Size.parse(source_size) or Size(ratio=(16, 9))
    params: dict[str, Any] = {"resolution": pick_tier(source, spec), "audio_setting": "origin"}
    _hints(request, params, spec, model, prompt_extend)
    check_metadata(request.metadata, model)
    body = merge_metadata({"model": model, "input": inputs, "parameters": params}, request.metadata)
    return CreateBody(body, source_seconds, source_size, uses_oss(body))


def _hints(
    request: VideoRequest, params: dict[str, Any], spec: Spec, model: str, prompt_extend: bool
) -> None:
    params.update(shared_parameters(request, prompt_extend))
    if request.generate_audio is not None:
        if spec.family == "videoedit":  # its sound is audio_setting: auto or the source's
            log.debug("generate_audio dropped: %s keeps or remakes the source's sound", model)
        else:
            params["audio"] = request.generate_audio
    if request.person_generation is not None:
        log.debug("person_generation dropped: DashScope has no such field")


def check_metadata(metadata: Mapping[str, Any], model: str) -> None:
    """What metadata must not bring to a new-protocol model: 2.6 fields, data: media URLs
    (the relay builds neither, so only metadata can)."""
    given = merge_metadata({"input": {}, "parameters": {}}, metadata)
    inputs, params = given.get("input"), given.get("parameters")
    if not isinstance(inputs, Mapping) or not isinstance(params, Mapping):
        raise Rejected("metadata.input and metadata.parameters must be objects", param="metadata")
    for key in LEGACY_INPUTS:
        if key in inputs:
            raise Rejected(
                f"metadata.input.{key} is a Wan 2.6 field; {model} takes its images "
                "and videos as input.media items (or send them as input_reference)",
                param="metadata",
            )
    if "size" in params:
        raise Rejected(
            f"metadata.parameters.size is a Wan 2.6 field; {model} takes "
            "parameters.resolution and parameters.ratio (or use size)",
            param="metadata",
        )
    media = inputs.get("media")
    for n, item in enumerate(media if isinstance(media, list) else []):
        url = item.get("url") if isinstance(item, Mapping) else None
        if isinstance(url, str) and url[:5].lower() == "data:":
            raise Rejected(
                f"metadata.input.media[{n}].url: DashScope takes no data: URL in media; send "
                "the bytes as input_reference and the relay hosts them",
                param="metadata",
            )


def _types(media: Any) -> list[str]:
    if not isinstance(media, list):
        return []
    return [str(item.get("type")) for item in media if isinstance(item, Mapping)]


def requested_seconds(body: Mapping[str, Any], asked: int) -> str:
    """The duration sent; Wan 3.0's -1 (the model chooses) and a video edit (the source's
    length) show what was asked until the finished task reports its length."""
    params = body.get("parameters")
    duration = params.get("duration") if isinstance(params, Mapping) else None
    if isinstance(duration, int) and not isinstance(duration, bool) and duration > 0:
        return str(duration)
    return str(asked if asked > 0 else DEFAULT_SECONDS)


def requested_size(body: Mapping[str, Any], spec: Spec, asked: Size) -> str:
    """The tier's size in the ratio sent, else in the client's aspect (a frame sets it)."""
    params = body.get("parameters")
    params = params if isinstance(params, Mapping) else {}
    resolution = params.get("resolution")
    tier = resolution if resolution in TIER_NAMES else spec.default_tier
    ratio = params.get("ratio")
    shape = Size.parse(ratio) if isinstance(ratio, str) and ratio in RATIOS else None
    width, height = snap_size(shape or asked, tier)
    return f"{width}x{height}"
