"""Client job -> the submit body (`CVSync2AsyncSubmitTask`), as pure functions.

Jimeng has no model field: the `req_key` names model, tier and mode together, so one public model
cannot map to one key. A channel's model_map names a *family* instead (below), and the key is
picked from the number of images and the size's tier. A real req_key passes through unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from relay.providers.base import Image, Job, Rejected, Size, Unsupported
from relay.providers.normalize import merge_metadata, snap_ratio, tier, whole_seconds

log = logging.getLogger("relay.providers.jimeng")

MAX_PROMPT = 800
MAX_IMAGE_BYTES = int(4.7 * 1024 * 1024)
IMAGE_TYPES = ("image/jpeg", "image/png")
RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
TIERS = ("720p", "1080p")
FRAMES = {5: 121, 10: 241}  # frames = 24 * s + 1
IMAGE_FIELDS = ("image_urls", "binary_data_base64")


@dataclass(frozen=True)
class ReqKey:
    name: str
    images: tuple[int, ...]  # the image counts it accepts
    tier: str
    ratios: tuple[str, ...] = RATIOS


KEYS: Mapping[str, ReqKey] = {
    k.name: k
    for k in (
        ReqKey("jimeng_vgfm_t2v_l20", (0,), "720p", (*RATIOS, "9:21")),
        ReqKey("jimeng_vgfm_i2v_l20", (1,), "720p"),
        ReqKey("jimeng_t2v_v30", (0,), "720p"),
        ReqKey("jimeng_i2v_first_v30", (1,), "720p"),
        ReqKey("jimeng_i2v_first_tail_v30", (2,), "720p"),
        ReqKey("jimeng_i2v_recamera_v30", (1,), "720p"),
        ReqKey("jimeng_t2v_v30_1080p", (0,), "1080p"),
        ReqKey("jimeng_i2v_first_v30_1080", (1,), "1080p"),
        ReqKey("jimeng_i2v_first_tail_v30_1080", (2,), "1080p"),
        ReqKey("jimeng_ti2v_v30_pro", (0, 1), "1080p"),
    )
}

# family -> tier -> (text only, first frame, first + last frame); None: no such mode
Modes = tuple[str | None, str | None, str | None]
_V30_720: Modes = ("jimeng_t2v_v30", "jimeng_i2v_first_v30", "jimeng_i2v_first_tail_v30")
_V30_1080: Modes = (
    "jimeng_t2v_v30_1080p",
    "jimeng_i2v_first_v30_1080",
    "jimeng_i2v_first_tail_v30_1080",
)
FAMILIES: Mapping[str, Mapping[str, Modes]] = {
    "jimeng-3.0": {"720p": _V30_720, "1080p": _V30_1080},
    "jimeng-3.0-720p": {"720p": _V30_720},
    "jimeng-3.0-1080p": {"1080p": _V30_1080},
    "jimeng-3.0-pro": {"1080p": ("jimeng_ti2v_v30_pro", "jimeng_ti2v_v30_pro", None)},
    "jimeng-s2.0-pro": {"720p": ("jimeng_vgfm_t2v_l20", "jimeng_vgfm_i2v_l20", None)},
}
_MODE_NAMES = ("text-to-video", "a first frame", "a first and a last frame")

# Output sizes. 1080P is the page's table; 720P sizes are unconfirmed, so the nominal ones.
SIZES: Mapping[str, Mapping[str, str]] = {
    "1080p": {
        "21:9": "2176x928",
        "16:9": "1920x1088",
        "4:3": "1664x1248",
        "1:1": "1440x1440",
        "3:4": "1248x1664",
        "9:16": "1088x1920",
    },
    "720p": {
        "21:9": "1680x720",
        "16:9": "1280x720",
        "4:3": "960x720",
        "1:1": "720x720",
        "3:4": "720x960",
        "9:16": "720x1280",
        "9:21": "720x1680",
    },
}


@dataclass(frozen=True)
class SubmitBody:
    body: dict[str, Any]
    req_key: str
    seconds: str  # what was asked upstream, as the video object reports it
    size: str


# --- choosing the req_key -----------------------------------------------------------------


def wanted_tier(size: Size, default: str) -> str:
    """720p or 1080p from the size's short side; a bare ratio takes the channel's default."""
    found = tier(size)
    if found is None:
        return default
    return "1080p" if found in ("1080p", "4k") else "720p"


def choose_key(model: str, images: int, want: str) -> ReqKey:
    """The req_key for a family (or a real key) and an image count; Unsupported when none fits."""
    if images > 2:
        raise Unsupported("jimeng takes at most two images: a first and a last frame")
    family = FAMILIES.get(model)
    if family is None:
        known = KEYS.get(model)
        if known is None:  # a key this table does not know yet: trusted as given
            return ReqKey(model, (images,), "1080p" if "1080" in model else "720p")
        if images not in known.images:
            raise Unsupported(f"jimeng req_key {model!r} does not take {_MODE_NAMES[images]}")
        return known
    modes = family.get(want) or next(iter(family.values()))
    name = modes[images]
    if name is None:
        raise Unsupported(f"jimeng model {model!r} does not take {_MODE_NAMES[images]}")
    return KEYS[name]


def image_count(job: Job) -> int:
    """How many images the native body will carry: metadata's lists replace the job's images."""
    for key in IMAGE_FIELDS:
        given = job.metadata.get(key)
        if isinstance(given, list):
            return len(given)
    return len(frames(job.images))


def frames(images: Sequence[Image]) -> list[Image]:
    """[first] or [first, last]: a second image without a role counts as the last frame."""
    first: Image | None = None
    last: Image | None = None
    for image in images:
        if image.role == "last_frame" or (image.role in (None, "first_frame") and first):
            last = last or image
        elif image.role in (None, "first_frame"):
            first = image
    if last is not None and first is None:
        raise Unsupported("jimeng needs a first frame to go with a last frame")
    return [i for i in (first, last) if i is not None]


# --- the body -----------------------------------------------------------------------------


def build_submit(job: Job, images: Sequence[Image], default_tier: str) -> SubmitBody:
    """The submit body; `images` are the job's, with URLs already fetched where bytes are needed
    (Jimeng takes URLs or raw base64 but never both in one request)."""
    if len(job.prompt) > MAX_PROMPT:
        raise Rejected(f"prompt: Jimeng accepts at most {MAX_PROMPT} characters", param="prompt")
    body: dict[str, Any] = {"req_key": "", "prompt": job.prompt}
    chosen = frames(images)
    if chosen and all(i.url is not None for i in chosen):
        body["image_urls"] = [i.url for i in chosen]
    elif chosen and all(i.data is not None for i in chosen):
        body["binary_data_base64"] = [raw_base64(i) for i in chosen]
    elif chosen:
        raise Rejected(
            "image URLs and image data cannot be combined in one request", param="input_reference"
        )
    body["seed"] = job.seed if job.seed is not None else -1
    body["frames"] = FRAMES[5] if job.seconds <= 7 else FRAMES[10]
    _log_dropped(job)
    body = merge_metadata(body, job.metadata)
    given = _image_lists(body)
    count = max((len(v) for v in given.values()), default=0)
    if len(given) > 1:
        raise Rejected(
            "image_urls and binary_data_base64 cannot be combined", param="input_reference"
        )
    if "binary_data_base64" in given:
        body["binary_data_base64"] = [strip_data_prefix(v) for v in given["binary_data_base64"]]
    key = choose_key(job.model, count, wanted_tier(job.size, default_tier))
    body["req_key"] = key.name
    ratio = snap_ratio(job.size, key.ratios)
    if count == 0:
        asked = body.get("aspect_ratio")
        if asked in key.ratios:
            ratio = str(asked)
        elif not asked:  # never an empty string: leave it out or send a real ratio
            body["aspect_ratio"] = ratio
    else:
        body.pop("aspect_ratio", None)  # the image decides the ratio
    return SubmitBody(body, key.name, _seconds(body.get("frames"), job.seconds), _size(key, ratio))


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


def _size(key: ReqKey, ratio: str) -> str:
    table = SIZES[key.tier]
    return table.get(ratio) or table["16:9"]


def _log_dropped(job: Job) -> None:
    dropped = [
        name
        for name in ("negative_prompt", "generate_audio", "enhance_prompt", "person_generation")
        if getattr(job, name) is not None
    ]
    if dropped:
        log.debug("jimeng has no field for %s: dropped", ", ".join(dropped))
