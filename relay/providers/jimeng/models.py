"""Jimeng's per-model tables: the req_keys, the families a channel's model_map may name, the
ratios, frame counts and output sizes, and how a family and a job pick one req_key.

Jimeng has no model field: the `req_key` names model, tier and mode together, so one public model
cannot map to one key. A channel's model_map names a *family* instead, and the key is picked from
the number of images and the size's tier. A real req_key passes through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from relay.domain import Size
from relay.providers.base import Accepts
from relay.providers.errors import Unsupported
from relay.providers.normalize import tier

MAX_PROMPT = 800
MAX_IMAGE_BYTES = int(4.7 * 1024 * 1024)
IMAGE_TYPES = ("image/jpeg", "image/png")
RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
TIERS = ("720p", "1080p")
FRAMES = {5: 121, 10: 241}  # frames = 24 * s + 1
LONG_FROM_S = 8  # up to 7 s asks for 121 frames (5 s), from 8 s on 241 (10 s)


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


def accepts(model: str) -> Accepts:
    """5 and 10 s; the sizes of each tier a family (or a req_key) makes, at its ratios."""
    family = FAMILIES.get(model)
    if family is not None:
        sizes = [SIZES[level][ratio] for level in family for ratio in RATIOS]
    else:
        key = KEYS.get(model) or ReqKey(model, (0,), "1080p" if "1080" in model else "720p")
        sizes = [SIZES[key.tier][ratio] for ratio in key.ratios if ratio in SIZES[key.tier]]
    return tuple(FRAMES), tuple(dict.fromkeys(sizes))


def frames_for(seconds: int) -> int:
    """The frame count asked for a duration: 121 (5 s) up to 7 s, else 241 (10 s)."""
    return FRAMES[10] if seconds >= LONG_FROM_S else FRAMES[5]


def size_of(key: ReqKey, ratio: str) -> str:
    """The output size a key makes at a ratio (16:9 for a ratio its tier has no size for)."""
    table = SIZES[key.tier]
    return table.get(ratio) or table["16:9"]
