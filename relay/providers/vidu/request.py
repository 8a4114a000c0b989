"""Vidu's create requests as pure functions (spec/providers/vidu.md): the model families'
limits, the submit path chosen by the images, and the native body.

Vidu has four submit paths: no image (text2video), one first frame (img2video), a first and a last
frame (start-end2video), or references (reference2video).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from relay.providers.base import Image, Job
from relay.providers.normalize import merge_metadata, snap_ratio, snap_seconds, tier

TEXT, IMAGE, START_END, REFERENCE = "text2video", "img2video", "start-end2video", "reference2video"
MAX_REFERENCES = 7

# --- model families -------------------------------------------------------------------------

NARROW_RATIOS = ("16:9", "9:16", "1:1")
WIDE_RATIOS = ("16:9", "9:16", "1:1", "3:4", "4:3")
RESOLUTION_ORDER = ("360p", "540p", "720p", "1080p")


@dataclass(frozen=True)
class Family:
    """What one model family accepts; the model names themselves live in the config."""

    name: str
    durations: tuple[int, ...]
    start_end_durations: tuple[int, ...]
    resolutions: tuple[str, ...]
    default_resolution: str
    ratios: tuple[str, ...]
    audio: bool = False
    # vidu2.0 narrows its resolutions for long clips
    by_duration: Mapping[int, tuple[str, ...]] = field(default_factory=dict)

    def resolutions_for(self, duration: int) -> tuple[str, ...]:
        return self.by_duration.get(duration, self.resolutions)

    def default_for(self, duration: int) -> str:
        allowed = self.resolutions_for(duration)
        return self.default_resolution if self.default_resolution in allowed else allowed[0]


ONE_TO_TEN = tuple(range(1, 11))
ONE_TO_EIGHT = tuple(range(1, 9))
Q3 = Family(
    "viduq3",
    durations=tuple(range(1, 17)),
    start_end_durations=tuple(range(1, 17)),
    resolutions=("540p", "720p", "1080p"),
    default_resolution="720p",
    ratios=WIDE_RATIOS,
    audio=True,
)
Q2 = Family("viduq2", ONE_TO_TEN, ONE_TO_EIGHT, ("540p", "720p", "1080p"), "720p", WIDE_RATIOS)
Q2_FAST = Family(
    "viduq2-pro-fast", ONE_TO_TEN, ONE_TO_EIGHT, ("720p", "1080p"), "720p", WIDE_RATIOS
)
Q1 = Family("viduq1", (5,), (5,), ("1080p",), "1080p", NARROW_RATIOS)
V20 = Family(
    "vidu2.0",
    durations=(4, 8),
    start_end_durations=(4, 8),
    resolutions=("360p", "720p", "1080p"),
    default_resolution="360p",
    ratios=NARROW_RATIOS,
    by_duration={8: ("720p",)},
)


def family(model: str) -> Family:
    """The limits of a model, by its name's prefix; an unknown name gets viduq2's."""
    name = model.lower()
    if name.startswith("vidu2.0"):
        return V20
    if name.startswith("viduq1"):
        return Q1
    if name.startswith("viduq2-pro-fast"):
        return Q2_FAST
    if name.startswith("viduq3"):
        return Q3
    return Q2


def resolution(fam: Family, wanted_tier: str | None, duration: int) -> str:
    """The relay tier as Vidu's tier string, limited to what the model offers at this length."""
    allowed = fam.resolutions_for(duration)
    if wanted_tier is None:
        return fam.default_for(duration)
    wanted = {"480p": "360p" if fam is V20 else "540p", "4k": "1080p"}.get(wanted_tier, wanted_tier)
    if wanted in allowed:
        return wanted
    rank = RESOLUTION_ORDER.index(wanted)
    # the nearest tier the model has; between two, the higher
    return min(
        allowed, key=lambda r: (abs(RESOLUTION_ORDER.index(r) - rank), -RESOLUTION_ORDER.index(r))
    )


def pixel_size(ratio: str, tier_name: str) -> str:
    """Nominal WxH of a tier in a ratio: 16:9 at 720p is 1280x720, 4:3 at 720p is 960x720."""
    short = int(tier_name.rstrip("p"))
    a, _, b = ratio.partition(":")
    w, h = int(a), int(b)
    long = int(round(short * max(w, h) / min(w, h) / 2) * 2)
    return f"{long}x{short}" if w >= h else f"{short}x{long}"


# --- request --------------------------------------------------------------------------------


def route(job: Job) -> tuple[str, list[Image]]:
    """The submit path and its images, in the order Vidu reads them."""
    roles = [image.role for image in job.images]
    if "subjects" in job.metadata or "reference_image" in roles or len(job.images) > 2:
        return REFERENCE, list(job.images)
    if not job.images:
        return TEXT, []
    if len(job.images) == 1:
        return IMAGE, list(job.images)
    return START_END, sorted(job.images, key=lambda image: image.role == "last_frame")


def refusal(job: Job) -> str | None:
    """Why Vidu cannot take these images, or None."""
    roles = [image.role for image in job.images]
    frames = [r for r in roles if r in ("first_frame", "last_frame")]
    if "reference_image" in roles and frames:
        return "vidu cannot mix reference images with first or last frames"
    path, _ = route(job)
    if path == IMAGE and roles == ["last_frame"]:
        return "vidu needs a first frame to go with a last frame"
    if path == START_END and (roles.count("first_frame") > 1 or roles.count("last_frame") > 1):
        return "vidu takes one first frame and one last frame"
    if path == REFERENCE and len(job.images) > MAX_REFERENCES:
        return f"vidu takes at most {MAX_REFERENCES} reference images"
    return None


@dataclass(frozen=True)
class Native:
    path: str
    body: dict[str, Any]
    seconds: int  # what went upstream, metadata included
    size: str
    dropped: tuple[str, ...]  # relay hints Vidu has no field for (logged, not sent)


def build(job: Job) -> Native:
    fam = family(job.model)
    path, images = route(job)
    duration = snap_seconds(
        job.seconds, fam.start_end_durations if path == START_END else fam.durations
    )
    res = resolution(fam, tier(job.size), duration)
    ratio = snap_ratio(job.size, fam.ratios)
    body: dict[str, Any] = {
        "model": job.model,
        "prompt": job.prompt,
        "duration": duration,
        "resolution": res,
        # Vidu's defaults, spelled out: off_peak may hold a job back for up to 48 h
        "bgm": False,
        "off_peak": False,
    }
    if path in (TEXT, REFERENCE):  # with images the first frame decides the shape
        body["aspect_ratio"] = ratio
    if images:
        body["images"] = [image.url_or_data_url() for image in images]
    if job.seed is not None:
        body["seed"] = job.seed
    dropped = [
        name
        for name, value in (
            ("negative_prompt", job.negative_prompt),
            ("enhance_prompt", job.enhance_prompt),
            ("person_generation", job.person_generation),
        )
        if value is not None
    ]
    if job.generate_audio is not None:
        if fam.audio or (path == REFERENCE and "subjects" in job.metadata):
            body["audio"] = job.generate_audio
        else:
            dropped.append("generate_audio")
    body = merge_metadata(body, job.metadata)
    sent_duration = body.get("duration")
    if not isinstance(sent_duration, int) or isinstance(sent_duration, bool):
        sent_duration = duration
    sent_res = body.get("resolution")
    if sent_res not in RESOLUTION_ORDER:
        sent_res = res
    sent_ratio = body.get("aspect_ratio")
    if sent_ratio not in WIDE_RATIOS:
        sent_ratio = ratio
    return Native(path, body, sent_duration, pixel_size(sent_ratio, sent_res), tuple(dropped))
