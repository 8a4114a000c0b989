"""The relay's own words, shared by the wire format, the use cases, the store and the adapters.

Nothing here does I/O or knows HTTP: a status, a size, an input image, one `VideoRequest` for
every way a job is asked for (create, remix, `remix_video_id`), what an adapter sees of a stored
task (`TaskRef`), how a task ended (`Outcome`), and where finished bytes are (`ContentSource`:
a local file, an upstream URL, or bytes an upstream answered inline).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import orjson

Status = Literal["queued", "in_progress", "completed", "failed"]
STATUSES: tuple[Status, ...] = ("queued", "in_progress", "completed", "failed")
ACTIVE: tuple[Status, ...] = ("queued", "in_progress")
TERMINAL: frozenset[str] = frozenset({"completed", "failed"})

# image_input: a first-frame image; last_frame: a second image as the last frame;
# reference_images: images with role reference_image; reference_video / reference_audio:
# input_reference.content[] items of those types; remix: POST /v1/videos/{id}/remix.
FEATURES = frozenset(
    {"image_input", "last_frame", "reference_images", "reference_video", "reference_audio", "remix"}
)
# a file's extension by its type: stored copies, hosted inputs, uploads to an upstream
EXTENSIONS: Mapping[str, str] = {
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "m4a",
    "audio/aac": "aac",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
}
VARIANTS: Mapping[str, tuple[str, str]] = {
    # variant: (content type, file extension)
    "video": ("video/mp4", "mp4"),
    "thumbnail": ("image/webp", "webp"),
    "spritesheet": ("image/jpeg", "jpg"),
}

# A job's shape, from its images: none, one first frame, first and last frames, reference images.
# Some providers run each on a different upstream model (Vidu's text2video vs img2video models,
# DashScope's -t2v vs -i2v, Jimeng's req_keys), so a channel's model_map may name one per shape.
Shape = Literal["text", "image", "frames", "reference"]
SHAPES: tuple[Shape, ...] = ("text", "image", "frames", "reference")


# --- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    """The client's size: WxH (width, height set) or a bare ratio (ratio set, no pixels)."""

    width: int | None = None
    height: int | None = None
    ratio: tuple[int, int] | None = None

    @classmethod
    def parse(cls, text: str) -> Size | None:
        for sep in ("x", ":"):
            left, found, right = text.partition(sep)
            if found and _ascii_number(left) and _ascii_number(right) and int(left) and int(right):
                a, b = int(left), int(right)
                return cls(width=a, height=b) if sep == "x" else cls(ratio=(a, b))
        return None

    @property
    def aspect(self) -> float:
        if self.width and self.height:
            return self.width / self.height
        assert self.ratio is not None
        return self.ratio[0] / self.ratio[1]

    @property
    def short_side(self) -> int | None:
        return min(self.width, self.height) if self.width and self.height else None

    def __str__(self) -> str:
        if self.width and self.height:
            return f"{self.width}x{self.height}"
        assert self.ratio is not None
        return f"{self.ratio[0]}:{self.ratio[1]}"


def _ascii_number(text: str) -> bool:
    return 0 < len(text) <= 6 and all("0" <= c <= "9" for c in text)


def sniff_image(data: bytes) -> str | None:
    """The image type from its magic bytes: JPEG, PNG or WebP, else None."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def data_url(data: bytes, mime: str) -> str:
    """`data:<mime>;base64,<data>`, as upstreams that take inline bytes by URL want them."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def sniff_media(data: bytes, kind: str) -> str | None:
    """A video's or an audio's type from its magic bytes (MP4/MOV/WebM; WAV/MP3/M4A/Ogg/FLAC/
    AAC), or None when the bytes are not that kind of media."""
    head = data[:12]
    if kind == "video":
        if head[4:8] == b"ftyp":
            return "video/quicktime" if head[8:12] == b"qt  " else "video/mp4"
        if head[:4] == b"\x1a\x45\xdf\xa3":
            return "video/webm"
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE6 == 0xE2):
        return "audio/mpeg"  # an ID3 tag, or an MPEG audio layer III frame sync
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "audio/aac"  # ADTS
    if head[4:8] == b"ftyp":
        return "audio/mp4"
    if head[:4] == b"OggS":
        return "audio/ogg"
    if head[:4] == b"fLaC":
        return "audio/flac"
    return None


@dataclass(frozen=True)
class Image:
    """An input image as the client gave it: an http(s) URL, or bytes (upload or data: URL)."""

    role: str | None = None  # first_frame, last_frame, reference_image, or None (= first frame)
    url: str | None = None
    data: bytes | None = field(default=None, repr=False)
    mime: str | None = None  # sniffed from the bytes, never taken from the client

    def data_url(self) -> str:
        assert self.data is not None and self.mime is not None
        return data_url(self.data, self.mime)

    def base64(self) -> str:
        """Raw base64, no `data:` prefix (what Kling and Jimeng call base64)."""
        assert self.data is not None
        return base64.b64encode(self.data).decode("ascii")

    def url_or_data_url(self) -> str:
        return self.url if self.url is not None else self.data_url()

    def record(self) -> dict[str, Any]:
        """What the task row keeps of it: the URL, or a digest of the bytes."""
        kept: dict[str, Any] = {"role": self.role}
        if self.url is not None:
            kept["url"] = self.url
        if self.data is not None:
            kept.update(
                mime=self.mime, bytes=len(self.data), sha256=hashlib.sha256(self.data).hexdigest()
            )
        return kept


@dataclass(frozen=True)
class Media:
    """A reference video or audio from input_reference.content[]: an http(s) URL, or bytes
    from a data: URL (type checked by magic bytes). `param` names the item for a 400."""

    kind: Literal["video", "audio"]
    url: str | None = None
    role: str | None = None
    data: bytes | None = field(default=None, repr=False)
    mime: str | None = None
    param: str = field(default="input_reference", compare=False)

    def data_url(self) -> str:
        assert self.data is not None and self.mime is not None
        return data_url(self.data, self.mime)

    def url_or_data_url(self) -> str:
        return self.url if self.url is not None else self.data_url()

    def record(self) -> dict[str, Any]:
        kept: dict[str, Any] = {"kind": self.kind, "url": self.url, "role": self.role}
        if self.data is not None:
            kept.update(
                mime=self.mime, bytes=len(self.data), sha256=hashlib.sha256(self.data).hexdigest()
            )
        return kept


HINTS = ("negative_prompt", "seed", "generate_audio", "enhance_prompt", "person_generation")


@dataclass(frozen=True)
class VideoRequest:
    """One job as the client asked for it, whichever route it came by.

    `model`, `seconds` and `size` are None when the client left them out: the use case fills
    them once (from the config's defaults, or from the source video of a remix). `remix_of` is
    the public id of the source video for a remix.
    """

    prompt: str
    model: str | None = None
    seconds: int | None = None
    size: Size | None = None
    images: tuple[Image, ...] = ()
    media: tuple[Media, ...] = ()
    negative_prompt: str | None = None
    seed: int | None = None
    generate_audio: bool | None = None
    enhance_prompt: bool | None = None
    person_generation: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    remix_of: str | None = None

    def with_defaults(self, *, model: str, seconds: int, size: Size) -> VideoRequest:
        """The request with what the client left out filled in."""
        return replace(
            self,
            model=self.model or model,
            seconds=self.seconds or seconds,
            size=self.size or size,
        )

    @property
    def public_model(self) -> str:
        assert self.model is not None, "defaults are applied before a request is routed"
        return self.model

    @property
    def duration(self) -> int:
        assert self.seconds is not None, "defaults are applied before a request is routed"
        return self.seconds

    @property
    def dimensions(self) -> Size:
        assert self.size is not None, "defaults are applied before a request is routed"
        return self.size

    @property
    def shape(self) -> Shape:
        """Which upstream model of a model_map table runs it."""
        roles = [image.role for image in self.images]
        if not roles:
            return "text"
        if "reference_image" in roles:
            return "reference"
        return "frames" if len(roles) > 1 or "last_frame" in roles else "image"

    def features(self) -> set[str]:
        """The features a job needs, from its images and media (and remix)."""
        needed: set[str] = set()
        roles = [image.role for image in self.images]
        firsts = sum(r in (None, "first_frame") for r in roles)
        if firsts:
            needed.add("image_input")
        if "last_frame" in roles or firsts > 1:
            needed.add("last_frame")
        if "reference_image" in roles:
            needed.add("reference_images")
        for item in self.media:
            needed.add(f"reference_{item.kind}")
        if self.remix_of is not None:
            needed.add("remix")
        return needed

    def stored(self) -> dict[str, Any]:
        """The request as kept in the task row: image bytes become a digest."""
        return {
            "prompt": self.prompt,
            "model": self.model,
            "seconds": self.seconds,
            "size": None if self.size is None else str(self.size),
            "images": [image.record() for image in self.images],
            "media": [m.record() for m in self.media],
            **{k: getattr(self, k) for k in HINTS if getattr(self, k) is not None},
            "metadata": dict(self.metadata),
            **({"remix_video_id": self.remix_of} if self.remix_of else {}),
        }

    def fingerprint(self) -> str:
        """A digest of what was asked, for Idempotency-Key (multipart boundaries don't count)."""
        canonical = orjson.dumps(self.stored(), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, their role, and what rate limits count against."""

    user: str
    role: str
    key_id: str  # "static:<name>" or "db:<id>"

    @property
    def admin(self) -> bool:
        return self.role == "admin"


# --- tasks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """A task as the store keeps it: the public video, its upstream job, and its schedule."""

    seq: int  # creation order, for stable pages
    id: str
    owner: str
    channel: str
    provider: str
    model: str
    upstream_model: str
    upstream_id: str | None  # None until an upstream accepted the job
    upstream_state: dict[str, Any]
    request: dict[str, Any]
    prompt: str
    seconds: str
    size: str
    status: str
    progress: int
    error_code: str | None
    error_message: str | None
    remixed_from: str | None
    created_at: int
    submitted_at: float | None
    updated_at: float
    completed_at: float | None
    expires_at: float | None
    next_poll_at: float | None
    poll_interval: float | None
    poll_errors: int  # poll errors in a row (auth refusals, transient codes, grace misses)
    lease_owner: str | None
    lease_until: float | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def ref(self) -> TaskRef:
        """What the adapter of its channel sees."""
        assert self.upstream_id is not None
        return TaskRef(
            id=self.id,
            upstream_id=self.upstream_id,
            upstream_model=self.upstream_model,
            state=self.upstream_state,
            submitted_at=self.submitted_at or float(self.created_at),
            seconds=self.seconds,
            size=self.size,
            status=self.status,  # type: ignore[arg-type]
        )


TASK_FIELDS = tuple(f.name for f in fields(Task))


def task_from(values: Iterable[Any]) -> Task:
    """A Task from its field values in declaration order (a stored row), without running the
    frozen dataclass's `__init__`: it sets each of the 28 fields through `object.__setattr__`,
    which took a third of the time a status read spends turning its row into a Task. The
    result is the same frozen, equal-comparing Task."""
    task = object.__new__(Task)
    task.__dict__.update(zip(TASK_FIELDS, values, strict=True))
    return task


@dataclass(frozen=True)
class TaskRef:
    """What an adapter sees of a stored task."""

    id: str  # the relay's public id (logs only; never send it upstream as an upstream id)
    upstream_id: str
    upstream_model: str
    state: Mapping[str, Any]  # what submit/poll chose to keep (Submitted.state, Update.state)
    submitted_at: float
    seconds: str
    size: str
    status: Status


@dataclass(frozen=True)
class Outcome:
    """How a task ended: the one transition out of queued/in_progress."""

    status: Literal["completed", "failed"]
    error_code: str | None = None  # a normalized code (providers/README.md) when failed
    error_message: str | None = None
    completed_at: float | None = None  # None: now
    expires_at: float | None = None  # when the upstream result stops being downloadable

    @classmethod
    def failed(cls, code: str, message: str) -> Outcome:
        return cls("failed", code, message)


# --- content --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalFile:
    path: Path
    content_type: str


@dataclass(frozen=True)
class Remote:
    """Where to GET the bytes. `headers` go to the first host only, never across a redirect."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None  # used when the upstream sends none or a generic one
    trusted: bool = False  # the channel's own base_url host: exempt from the private-network guard


@dataclass(frozen=True)
class InlineBytes:
    """Finished bytes an upstream answered inline (base64 in its JSON: Veo's `encodedVideo`,
    Gemini Omni's `data`), decoded. The adapter makes one from content() by reading the
    upstream's answer again, so the bytes live for one download or one copy, never in the
    task row; providers/inline.py decodes them and caps their size. Served from memory with
    Range, and stored by the copier like a Remote's body."""

    data: bytes = field(repr=False)
    content_type: str


ContentSource = LocalFile | Remote | InlineBytes
