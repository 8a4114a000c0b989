"""What an OpenRouter model takes, read from `GET /videos/models` (spec/providers/openrouter.md,
"Request fields" and "Mapping"), and the size rules built on it.

OpenRouter publishes each model's sets and refuses values outside them with a 400 rather than
snapping, so the adapter snaps against the live list. A model missing from the list (or a list
that could not be fetched) gets the values unsnapped, in the API's own vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from relay.domain import Size
from relay.providers.base import DEFAULT_SECONDS, DEFAULT_SIZES, Accepts
from relay.providers.normalize import nominal_size, snap_ratio, snap_seconds, tier

# The API's full vocabulary: what an unknown model is sent (the page's field table).
RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9", "9:21")
RESOLUTIONS = ("480p", "720p", "768p", "1080p", "1K", "2K", "4K")
HEIGHTS = {"480p": 480, "720p": 720, "768p": 768, "1080p": 1080, "1K": 1080, "2K": 1440, "4K": 2160}
TIER_RESOLUTION = {"480p": "480p", "720p": "720p", "1080p": "1080p", "4k": "4K"}
REPORT_TIER = "720p"  # a bare ratio sends no resolution; the video object shows its 720p size


@dataclass(frozen=True)
class Capabilities:
    """One row of `/videos/models`. None: "not applicable" (the page: every field may be null)."""

    id: str
    durations: tuple[int, ...]
    resolutions: tuple[str, ...] | None = None
    ratios: tuple[str, ...] | None = None
    sizes: tuple[str, ...] | None = None
    frame_images: tuple[str, ...] = ()
    generate_audio: bool = False
    seed: bool = False
    passthrough: tuple[str, ...] = ()


def _strings(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(v for v in value if isinstance(v, str))


def capabilities(row: Any) -> Capabilities | None:
    """A models-list row, or None for rows the relay ignores (no durations: edit, upscale and
    avatar models) and rows it cannot read."""
    if not isinstance(row, Mapping) or not isinstance(row.get("id"), str):
        return None
    raw = row.get("supported_durations")
    if not isinstance(raw, list):
        return None
    durations = sorted({d for d in raw if type(d) is int and d >= 1})
    if not durations:
        return None
    ratios = _strings(row.get("supported_aspect_ratios"))
    return Capabilities(
        id=row["id"],
        durations=tuple(durations),
        resolutions=_strings(row.get("supported_resolutions")),
        # a ratio the relay cannot parse is never chosen by the snap
        ratios=tuple(r for r in ratios if Size.parse(r)) if ratios is not None else None,
        sizes=_strings(row.get("supported_sizes")),
        frame_images=_strings(row.get("supported_frame_images")) or (),
        generate_audio=row.get("generate_audio") is True,
        seed=row.get("seed") is True,
        passthrough=_strings(row.get("allowed_passthrough_parameters")) or (),
    )


def model_table(body: Any) -> dict[str, Capabilities]:
    rows = body.get("data") if isinstance(body, Mapping) else None
    table: dict[str, Capabilities] = {}
    for row in rows if isinstance(rows, list) else ():
        found = capabilities(row)
        if found is not None:
            table[found.id] = found
    return table


# --- sizes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SizeFields:
    """The native size fields for one request: `size`, or `resolution` and/or `aspect_ratio`
    (never both forms), and the WxH the video object reports."""

    fields: Mapping[str, str]
    reported: str


def snap_resolution(size: Size, allowed: Sequence[str]) -> str:
    """The shared tier rule, then the allowed entry nearest by pixel height (a tie: the higher)."""
    wanted = HEIGHTS[TIER_RESOLUTION[tier(size) or "720p"]]
    known = [r for r in allowed if r in HEIGHTS] or list(RESOLUTIONS)
    return min(known, key=lambda r: (abs(HEIGHTS[r] - wanted), -HEIGHTS[r]))


def pixel_size(resolution: str, ratio: str) -> str:
    """720p 16:9 -> 1280x720, 9:16 -> 720x1280, 1:1 -> 720x720: the short side is the
    resolution's height, the long side follows the ratio (rounded to an even number)."""
    short = HEIGHTS[resolution]
    parsed = Size.parse(ratio)
    assert parsed is not None and parsed.ratio is not None
    return nominal_size(*parsed.ratio, short)


def size_fields(size: Size, caps: Capabilities | None) -> SizeFields:
    """The client's size as native fields (the page's Mapping table)."""
    ratios = RATIOS if caps is None else caps.ratios
    resolutions = RESOLUTIONS if caps is None else caps.resolutions
    if size.width and size.height and caps is not None and caps.sizes:
        if str(size) in caps.sizes:
            return SizeFields({"size": str(size)}, str(size))
        if not ratios and not resolutions:  # a model that only names exact sizes
            nearest = _nearest_size(size, caps.sizes)
            if nearest is not None:
                return SizeFields({"size": nearest}, nearest)
    fields: dict[str, str] = {}
    ratio = snap_ratio(size, ratios) if ratios else None
    if ratio is not None:
        fields["aspect_ratio"] = ratio
    resolution = None
    if size.width and size.height and resolutions:
        resolution = snap_resolution(size, resolutions)
        fields["resolution"] = resolution
    if ratio is None:
        return SizeFields(fields, _as_asked(size))
    return SizeFields(fields, pixel_size(resolution or REPORT_TIER, ratio))


def _as_asked(size: Size) -> str:
    if size.width and size.height:
        return str(size)
    return pixel_size(REPORT_TIER, snap_ratio(size, RATIOS))


def _nearest_size(size: Size, sizes: Sequence[str]) -> str | None:
    """The nearest exact size: by aspect (log distance) first, then by short side."""
    parsed = [(s, p) for s in sizes if (p := Size.parse(s)) is not None and p.width]
    if not parsed:
        return None
    target, short = math.log(size.aspect), size.short_side or 720
    best = min(
        parsed,
        key=lambda sp: (
            round(abs(math.log(sp[1].aspect) - target), 3),
            abs((sp[1].short_side or 0) - short),
        ),
    )
    return best[0]


def duration(seconds: int, caps: Capabilities | None) -> int:
    """Snapped to the model's durations (a tie: the longer); unsnapped for an unknown model."""
    return snap_seconds(seconds, caps.durations) if caps is not None else seconds


def accepts(caps: Capabilities | None) -> Accepts:
    """What a form should offer: the model's durations, and every size that is requested as it
    is (exact sizes, and each resolution x ratio whose size maps back to the same fields)."""
    if caps is None:
        return DEFAULT_SECONDS, DEFAULT_SIZES
    candidates = list(caps.sizes or ())
    for resolution in caps.resolutions or ():
        for ratio in caps.ratios or ():
            if resolution in HEIGHTS:
                candidates.append(pixel_size(resolution, ratio))
    sizes: list[str] = []
    for text in candidates:
        parsed = Size.parse(text)
        if parsed is not None and text not in sizes and size_fields(parsed, caps).reported == text:
            sizes.append(text)
    return caps.durations, tuple(sizes) or DEFAULT_SIZES
