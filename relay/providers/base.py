"""The adapter contract: what a provider declares, the few methods it implements, what it raises.

An adapter translates between the relay's normalized job and one upstream's native API, and
classifies the upstream's answers. It never decides: retries, failover, cooldowns, progress
smoothing and HTTP statuses are policy (channels.py, tasks.py, poller.py, content.py).

Declare (class attributes):
    name              the registry key, `provider = "..."` in the config
    credentials       which of api_key / access_key / secret_key a channel must give
    default_base_url  used when the channel sets no base_url (None: base_url is required)
    needs_network     False only for the built-in demo
    features          what it can do beyond text-to-video (see FEATURES)
    variants          content variants it produces ("video" always)
    options           {name: Option} accepted in the channel's `options = {...}`
    typical_run_s     typical generation time, for the time-based progress estimate
    result_ttl_s      how long an upstream result URL lives (expires_at without a stored copy)

Implement (async unless noted):
    check(job)                 pure: raise Unsupported for what this model cannot do (no network)
    submit(job)                -> Submitted   create the upstream job
    poll(task)                 -> Update      one status check
    content(task, variant)     -> LocalFile | Remote   where the finished bytes are
    refresh_content(task, v)   -> LocalFile | Remote | None   a fresh URL after 403/404/410
    remix(source, job)         -> Submitted   only with "remix" in features
    delete(task)               best effort upstream delete (default: nothing to do)

Raise (the small error tree; the message is safe to show a client, `detail` is for the log):
    ProviderError
    ├── AuthFailed        credentials refused               -> upstream_auth_failed
    ├── QuotaExceeded     balance / plan exhausted          -> insufficient_quota
    ├── RateLimited       slow down (retry_after seconds)   -> rate_limit_exceeded
    ├── Unavailable       5xx, timeout, transport failure   -> upstream_error
    │                     (maybe_created: the upstream may have created the job: a timeout
    │                     after sending, a 504, or a 5xx where the provider's page says so)
    ├── Rejected          the upstream refused the request  -> invalid_request, moderation_blocked
    ├── TaskNotFound      upstream id unknown or expired    -> task_expired
    ├── NotReady          content asked for before it exists
    ├── VariantUnavailable  the provider does not produce this variant
    └── Unsupported       a feature this provider/model lacks (raised before any network call)
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from relay.forms import sniff_image

# The error tree drawn above lives in relay.upstream_errors, so outbound HTTP can raise it
# without importing every adapter; adapters import it from here.
from relay.upstream_errors import (
    AuthFailed,
    NotReady,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    Rejected,
    TaskNotFound,
    Unavailable,
    Unsupported,
    VariantUnavailable,
)

__all__ = [
    "AuthFailed",
    "NotReady",
    "ProviderError",
    "QuotaExceeded",
    "RateLimited",
    "Rejected",
    "TaskNotFound",
    "Unavailable",
    "Unsupported",
    "VariantUnavailable",
]

if TYPE_CHECKING:
    from relay.config import ChannelConfig
    from relay.upstream import ChannelHttp

Status = Literal["queued", "in_progress", "completed", "failed"]
STATUSES: tuple[Status, ...] = ("queued", "in_progress", "completed", "failed")
TERMINAL: frozenset[str] = frozenset({"completed", "failed"})

# image_input: a first-frame image; last_frame: a second image as the last frame;
# reference_images: images with role reference_image; reference_video / reference_audio:
# input_reference.content[] items of those types; remix: POST /v1/videos/{id}/remix.
FEATURES = frozenset(
    {"image_input", "last_frame", "reference_images", "reference_video", "reference_audio", "remix"}
)
VARIANTS: Mapping[str, tuple[str, str]] = {
    # variant: (content type, file extension)
    "video": ("video/mp4", "mp4"),
    "thumbnail": ("image/webp", "webp"),
    "spritesheet": ("image/jpeg", "jpg"),
}


# --- declared options ---------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One key of a channel's `options` table, validated at config load."""

    kind: type | tuple[type, ...]
    default: Any
    help: str
    minimum: float | None = None
    choices: tuple[Any, ...] | None = None

    def check(self, value: Any) -> str | None:
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        numeric = any(k in (int, float) for k in kinds)
        if isinstance(value, bool) and bool not in kinds:
            return f"{_kind_name(kinds)}"
        if numeric and float in kinds and isinstance(value, int):
            pass
        elif not isinstance(value, kinds):
            return f"{_kind_name(kinds)}"
        if self.minimum is not None and numeric and value < self.minimum:
            return f"a number >= {self.minimum:g}"
        if self.choices is not None and value not in self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        return None


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {
        bool: "true or false",
        int: "a whole number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


# --- what the adapter receives --------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """An input image as the client gave it: an http(s) URL, or bytes (upload or data: URL)."""

    role: str | None = None  # first_frame, last_frame, reference_image, or None (= first frame)
    url: str | None = None
    data: bytes | None = field(default=None, repr=False)
    mime: str | None = None  # sniffed from the bytes, never taken from the client

    def data_url(self) -> str:
        assert self.data is not None and self.mime is not None
        return f"data:{self.mime};base64,{self.base64()}"

    def base64(self) -> str:
        """Raw base64, no `data:` prefix (what Kling and Jimeng call base64)."""
        assert self.data is not None
        return base64.b64encode(self.data).decode("ascii")

    def url_or_data_url(self) -> str:
        return self.url if self.url is not None else self.data_url()


@dataclass(frozen=True)
class Media:
    """A reference video or audio from input_reference.content[] (URLs only)."""

    kind: Literal["video", "audio"]
    url: str
    role: str | None = None


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


@dataclass(frozen=True)
class Job:
    """A normalized create (or remix) request, with the public model mapped to the upstream one."""

    model: str  # upstream model name, after the channel's model_map
    prompt: str
    seconds: int  # as the client asked; adapters snap it (normalize.snap_seconds)
    size: Size
    images: tuple[Image, ...] = ()
    media: tuple[Media, ...] = ()
    negative_prompt: str | None = None
    seed: int | None = None
    generate_audio: bool | None = None
    enhance_prompt: bool | None = None
    person_generation: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


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


# --- what the adapter returns ---------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    upstream_id: str
    seconds: str  # whole-number string actually requested upstream
    size: str  # WxH actually requested upstream
    state: Mapping[str, Any] = field(default_factory=dict)
    status: Status = "queued"
    progress: int = 0


@dataclass(frozen=True)
class TaskError:
    code: str  # a normalized code: see providers/README.md
    message: str  # the native code and message, e.g. "DataInspectionFailed: ..."


@dataclass(frozen=True)
class Update:
    """One poll's news. None everywhere means "no change"."""

    status: Status | None  # None: an unknown native status, keep the previous one
    progress: int | None = None  # the upstream's percentage, if it gives one
    error: TaskError | None = None  # set when status is failed
    seconds: str | None = None
    size: str | None = None
    completed_at: float | None = None
    expires_at: float | None = None  # when the upstream result stops being downloadable
    state: Mapping[str, Any] = field(default_factory=dict)  # merged into the stored state
    poll_after_s: float | None = None  # the upstream's own lower bound for the next poll


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


ContentSource = LocalFile | Remote


# --- the adapter base class ---------------------------------------------------------------


class Provider:
    name: ClassVar[str]
    credentials: ClassVar[tuple[str, ...]] = ("api_key",)
    default_base_url: ClassVar[str | None] = None
    needs_network: ClassVar[bool] = True
    features: frozenset[str] = frozenset()  # per instance when an option changes it
    variants: ClassVar[frozenset[str]] = frozenset({"video"})
    options: ClassVar[Mapping[str, Option]] = {}
    typical_run_s: float = 180.0  # per instance when an option sets it (the demo does)
    result_ttl_s: ClassVar[float | None] = None

    def __init__(self, channel: ChannelConfig, http: ChannelHttp | None) -> None:
        self.channel = channel
        self._http = http
        self.base_url = (channel.base_url or self.default_base_url or "").rstrip("/")

    @property
    def http(self) -> ChannelHttp:
        assert self._http is not None, f"provider {self.name} was built without HTTP"
        return self._http

    def check(self, job: Job) -> None:
        """Raise Unsupported for anything this provider cannot do; no network here."""
        needed = job_features(job)
        missing = sorted(needed - self.features)
        if missing:
            raise Unsupported(
                f"provider {self.name!r} does not support {missing[0].replace('_', ' ')}"
            )

    async def submit(self, job: Job) -> Submitted:
        raise NotImplementedError

    async def poll(self, task: TaskRef) -> Update:
        raise NotImplementedError

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        raise NotImplementedError

    async def refresh_content(self, task: TaskRef, variant: str) -> ContentSource | None:
        return None

    async def remix(self, source: TaskRef, job: Job) -> Submitted:
        raise Unsupported(f"provider {self.name!r} does not support remix")

    async def delete(self, task: TaskRef) -> None:
        return None

    async def image_bytes(self, image: Image, limit: int) -> Image:
        """The image with its bytes and sniffed type, for providers that take bytes only: a
        URL image is fetched here, through the private-network guard."""
        if image.data is not None and image.mime is not None:
            return image
        assert image.url is not None
        data = await self.http.fetch_image(image.url, limit)
        mime = sniff_image(data)
        if mime is None:
            raise Rejected(
                "the image at the input_reference URL is not a JPEG, PNG or WebP image",
                param="input_reference",
            )
        return Image(role=image.role, data=data, mime=mime)

    def variant_check(self, variant: str) -> None:
        if variant not in self.variants:
            raise VariantUnavailable(f"provider {self.name!r} does not produce a {variant}")


def job_features(job: Job) -> set[str]:
    """The features a job needs, from its images and media."""
    needed: set[str] = set()
    roles = [image.role for image in job.images]
    if any(r in (None, "first_frame") for r in roles):
        needed.add("image_input")
    if "last_frame" in roles or sum(r in (None, "first_frame") for r in roles) > 1:
        needed.add("last_frame")
    if "reference_image" in roles:
        needed.add("reference_images")
    for item in job.media:
        needed.add(f"reference_{item.kind}")
    return needed


def now() -> float:
    return time.time()


Factory = Callable[["ChannelConfig", "ChannelHttp | None"], Provider]
