"""MiniMax Hailuo create requests as pure functions (spec/providers/minimax.md): the model
families, what each model takes, and the native body of `POST /v1/video_generation`.

The fields choose the mode: no image (t2v), `first_frame_image` (i2v), plus `last_frame_image`
(first+last, Hailuo-02 only), or `subject_reference` (S2V-01). There is no aspect-ratio field:
t2v comes out 16:9 and i2v follows the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relay.providers.base import Image, Job
from relay.providers.normalize import merge_metadata, snap_seconds, tier

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


def frames(job: Job) -> tuple[Image | None, Image | None, list[Image]]:
    """(first frame, last frame, references); an image with no role is a frame, first then last."""
    first = last = None
    references: list[Image] = []
    loose: list[Image] = []
    for image in job.images:
        if image.role == "reference_image":
            references.append(image)
        elif image.role == "first_frame":
            first = image
        elif image.role == "last_frame":
            last = image
        else:
            loose.append(image)
    for image in loose:
        if first is None:
            first = image
        elif last is None:
            last = image
    return first, last, references


def refusal(job: Job) -> str | None:
    """Why this model cannot take the job's images, or None."""
    fam = family(job.model)
    first, last, references = frames(job)
    needs_image, text_only, subject_only = _mode_limits(job.model)
    label = f"MiniMax {job.model}"
    if len([i for i in job.images if i.role != "reference_image"]) > 2:
        return "MiniMax takes one first frame and at most one last frame"
    if references and (first or last):
        return "MiniMax cannot mix a subject reference with first or last frames"
    if len(references) > 1:
        return "MiniMax takes one subject reference image"
    if references and not subject_only:
        return f"{label} does not take reference images (S2V-01 does)"
    if subject_only and not references and "subject_reference" not in job.metadata:
        return f"{label} needs a reference image of the subject"
    if text_only and (first or last):
        return f"{label} is text-to-video only: use an I2V or Hailuo model for image input"
    if needs_image and first is None and "first_frame_image" not in job.metadata:
        return f"{label} needs a first-frame image"
    if last is not None and first is None:
        return "MiniMax needs a first frame to go with a last frame"
    if last is not None and not fam.first_last:
        return f"{label} does not take a last frame (MiniMax-Hailuo-02 does)"
    return None


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


@dataclass(frozen=True)
class Native:
    body: dict[str, Any]
    seconds: int  # what went upstream, metadata included
    size: str
    dropped: tuple[str, ...]  # relay hints MiniMax has no field for (logged, not sent)


def build(job: Job) -> Native:
    fam = family(job.model)
    first, last, references = frames(job)
    res = resolution(fam, tier(job.size), low_res_ok=first is not None and last is None)
    body: dict[str, Any] = {
        "model": job.model,
        "prompt": job.prompt,
        "duration": duration(fam, job.seconds, res),
        "resolution": res,
    }
    if first is not None:
        body["first_frame_image"] = first.url_or_data_url()
    if last is not None:
        body["last_frame_image"] = last.url_or_data_url()
    if references:
        body["subject_reference"] = [
            {"type": "character", "image": [references[0].url_or_data_url()]}
        ]
    if job.enhance_prompt is not None:
        body["prompt_optimizer"] = job.enhance_prompt
    dropped = tuple(
        name
        for name, value in (
            ("negative_prompt", job.negative_prompt),
            ("seed", job.seed),
            ("generate_audio", job.generate_audio),
            ("person_generation", job.person_generation),
        )
        if value is not None
    )
    body = merge_metadata(body, job.metadata)
    sent_res = body.get("resolution")
    if sent_res not in RESOLUTIONS:
        sent_res = res
    if "duration" not in job.metadata:  # a resolution from metadata still forces 6 s at 1080P
        body["duration"] = duration(fam, job.seconds, sent_res)
    sent_seconds = body["duration"]
    if type(sent_seconds) is not int or sent_seconds <= 0:
        sent_seconds = duration(fam, job.seconds, sent_res)
    # t2v is always landscape; i2v follows the image, so the client's own orientation is the guess
    portrait = "first_frame_image" in body and job.size.aspect < 1
    return Native(body, sent_seconds, pixel_size(sent_res, portrait), dropped)
