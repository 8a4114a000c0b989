"""MiniMax Hailuo models (spec/providers/minimax.md): the families, what each takes, and the
resolution and duration each allows.

The fields choose the mode: no image (t2v), `first_frame_image` (i2v), plus `last_frame_image`
(first+last, Hailuo-02 only), or `subject_reference` (S2V-01). There is no aspect-ratio field:
t2v comes out 16:9 and i2v follows the image.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.domain import VideoRequest
from relay.providers.base import Accepts, split_frames
from relay.providers.normalize import snap_seconds

RESOLUTIONS = ("512P", "720P", "768P", "1080P")


@dataclass(frozen=True)
class Family:
    name: str
    default_resolution: str
    resolutions: tuple[str, ...]
    long_durations: bool  # 10 s besides 6 s (never at 1080P)
    first_last: bool = False
    low_res_i2v: bool = False  # 512P, on i2v without a last frame


HAILUO_23 = Family("Hailuo 2.3", "768P", ("768P", "1080P"), long_durations=True)
HAILUO_02 = Family(
    "Hailuo-02",
    "768P",
    ("512P", "768P", "1080P"),
    long_durations=True,
    first_last=True,
    low_res_i2v=True,
)
SERIES_01 = Family("01-series", "720P", ("720P",), long_durations=False)


def family(model: str) -> Family:
    """The limits of a model by its name; an unknown name gets Hailuo 2.3's, the newest."""
    name = model.lower()
    if name.startswith(("t2v-01", "i2v-01", "s2v-01")):
        return SERIES_01
    if "hailuo-02" in name:
        return HAILUO_02
    return HAILUO_23


def _mode_limits(model: str) -> tuple[bool, bool, bool]:
    """(needs a first frame, takes no image, subject reference only) for the known names."""
    name = model.lower()
    needs_image = name.startswith("i2v-") or name.endswith("-fast")
    return needs_image, name.startswith("t2v-"), name.startswith("s2v-")


def refusal(request: VideoRequest, model: str) -> str | None:
    """Why this upstream model cannot take the request's images, or None."""
    fam = family(model)
    frames = split_frames(request.images)
    first, last, references = frames.first, frames.last, frames.references
    needs_image, text_only, subject_only = _mode_limits(model)
    label = f"MiniMax {model}"
    if len([i for i in request.images if i.role != "reference_image"]) > 2:
        return "MiniMax takes one first frame and at most one last frame"
    if references and (first or last):
        return "MiniMax cannot mix a subject reference with first or last frames"
    if len(references) > 1:
        return "MiniMax takes one subject reference image"
    if references and not subject_only:
        return f"{label} does not take reference images (S2V-01 does)"
    if subject_only and not references and "subject_reference" not in request.metadata:
        return f"{label} needs a reference image of the subject"
    if text_only and (first or last):
        return f"{label} is text-to-video only: use an I2V or Hailuo model for image input"
    if needs_image and first is None and "first_frame_image" not in request.metadata:
        return f"{label} needs a first-frame image"
    if last is not None and first is None:
        return "MiniMax needs a first frame to go with a last frame"
    if last is not None and not fam.first_last:
        return f"{label} does not take a last frame (MiniMax-Hailuo-02 does)"
    return None


def accepts(model: str) -> Accepts:
    """6 s (and 10 s where the family has it), each resolution as its 16:9 size (text jobs come
    out landscape, image jobs follow the image; 512P is for one-image jobs only)."""
    fam = family(model)
    seconds = (6, 10) if fam.long_durations else (6,)
    tiers = [res for res in fam.resolutions if res != "512P" or not fam.low_res_i2v]
    return seconds, tuple(pixel_size(res, portrait=False) for res in tiers)


def resolution(fam: Family, wanted_tier: str | None, *, low_res_ok: bool) -> str:
    """1080p and up -> 1080P; 480p -> 512P where allowed; else the family's default, which is
    what 720p means on each (768P on Hailuo, 720P on the 01-series)."""
    if wanted_tier in ("1080p", "4k") and "1080P" in fam.resolutions:
        return "1080P"
    if wanted_tier == "480p" and low_res_ok and fam.low_res_i2v:
        return "512P"
    return fam.default_resolution


def duration(fam: Family, seconds: int, res: str) -> int:
    """Below 8 -> 6, 8 and up -> 10; only 6 at 1080P and on the 01-series."""
    if not fam.long_durations or res == "1080P":
        return 6
    return snap_seconds(seconds, (6, 10))


def pixel_size(res: str, portrait: bool) -> str:
    """Nominal 16:9 WxH of a resolution tier: 768P is 1366x768."""
    short = int(res.rstrip("P"))
    long = int(round(short * 16 / 9 / 2) * 2)
    return f"{short}x{long}" if portrait else f"{long}x{short}"
