"""The adapter contract: what a provider declares, the few methods it implements, what it raises.

An adapter translates between the relay's `VideoRequest` and one upstream's native API, and
classifies the upstream's answers. It never decides: retries, failover, cooldowns, progress
smoothing and HTTP statuses are policy (relay/policy.py, asked by the use cases and workers).

Declare (class attributes):
    name              the registry key, `provider = "..."` in the config
    credentials       which of api_key / access_key / secret_key a channel must give;
                      `credentials_needed(options)` may waive some for a channel's options
    default_base_url  used when the channel sets no base_url (None: base_url is required)
    needs_network     False only for the built-in demo
    features          what it can do beyond text-to-video (see domain.FEATURES), and
                      "cancel" where the upstream can stop a running job
    variants          content variants it produces ("video" always; per instance when an
                      option changes it)
    Options           a frozen dataclass of the channel's `options = {...}`, each field made
                      with `option(default, help, ...)`; the config validates against it and
                      the adapter reads `self.channel.options.<name>`, typed
    typical_run_s     typical generation time, for the time-based progress estimate
    result_ttl_s      how long an upstream result URL lives (expires_at without a stored copy)
    poll_rules        PollRules: lifecycle rules the upstream needs (an error streak that fails
                      a task, a grace window for a brand-new id the upstream does not know yet)
    accepts(model)    (durations, WxH sizes) an upstream model takes, from the provider's own
                      tables in models.py: what the dashboard's form offers (other values are
                      snapped as usual); default: the OpenAI Videos API's own values
    can_remix(model)  whether the upstream model can remix (default: "remix" in features)
    can_cancel(model) whether the upstream model's jobs can be stopped (default: "cancel" in
                      features)
    min_poll_s        the upstream's floor between status checks, the first included

Implement (async unless noted):
    refusal(request, model)    pure: why this model cannot do the request, or None (no network);
                               call super() first, it checks `features`
    submit(request, model)     -> Submitted   create the upstream job (`model`: the upstream name)
    poll(task)                 -> Update      one status check
    content(task, variant)     -> LocalFile | Remote | InlineBytes   where the finished bytes
                               are (InlineBytes: a result answered inline as base64, read again
                               and decoded by providers/inline.py's `decode`, at most 32 MiB)
    refresh_content(task, v)   -> a ContentSource or None   a fresh source after 403/404/410;
                               the default polls again and offers what content() then names,
                               if it differs
    remix(source, request, model) -> Submitted   only with "remix" in features
    delete(task)               best effort upstream delete (default: nothing to do)
    cancel(task)               stop a queued or running job upstream, only with "cancel" in
                               features; raise CancelRefused when the upstream will not in the
                               state the job is in (still running where only a queued job
                               stops, or finished already): the relay then polls once and takes
                               the real outcome. Never delete a finished job's record on the
                               way (some upstreams' cancel is a delete that does both)

Raise the error tree of relay/providers/errors.py. Shared helpers: `image_bytes` (fetch a URL
image through the private-network guard), `hosted_url` / `input_url` / `hosted_inputs` (a URL
for bytes the client sent, for upstreams that fetch inputs by URL only: relay/hosting.py),
`stored_copy_url` / `stored_copy_bytes` (a remix source's stored copy, once the upstream's own
result is gone), `split_frames`, `variant_check`; pure translation helpers in
relay/providers/normalize.py.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from relay import hosting
from relay.domain import (
    ContentSource,
    Image,
    Media,
    Status,
    TaskRef,
    VideoRequest,
    sniff_image,
)
from relay.providers.errors import Rejected, TaskNotFound, Unsupported, VariantUnavailable

if TYPE_CHECKING:
    from relay.providers.http import ChannelHttp

log = logging.getLogger("relay.providers")

UNKNOWN_NOTED_MAX = 100  # distinct unknown statuses remembered per channel
# What a provider that declares nothing more takes: the OpenAI Videos API's basic values (sora-2's),
# which every server imitating it knows.
DEFAULT_SECONDS: tuple[int, ...] = (4, 8, 12)
DEFAULT_SIZES: tuple[str, ...] = ("720x1280", "1280x720")

Accepts = tuple[tuple[int, ...], tuple[str, ...]]  # (whole seconds, "WxH" sizes)


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
        """What a bad value should have been, or None when it is fine."""
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


def option(
    default: Any,
    help: str,
    *,
    kind: type | tuple[type, ...] | None = None,
    minimum: float | None = None,
    choices: tuple[Any, ...] | None = None,
) -> Any:
    """A field of a provider's Options dataclass: its default, and how the config checks it."""
    spec = Option(kind or type(default), default, help, minimum, choices)
    if isinstance(default, list | dict):  # each channel gets its own copy
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"option": spec})
    return field(default=default, metadata={"option": spec})


@dataclass(frozen=True)
class NoOptions:
    """The Options of a provider that takes none."""


def option_specs(options_class: type[Any]) -> dict[str, Option]:
    """{name: Option} of an Options dataclass, in declaration order."""
    specs = {}
    for f in fields(options_class):
        spec = f.metadata.get("option")
        if spec is None:
            default = None if f.default is MISSING else f.default
            spec = Option(type(default), default, f.name)
        specs[f.name] = spec
    return specs


OptionsT = TypeVar("OptionsT")


@dataclass(frozen=True)
class ChannelView(Generic[OptionsT]):
    """What an adapter sees of its channel: a name for logs, where and how to call, options."""

    name: str
    options: OptionsT
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PollRules:
    """Lifecycle rules an upstream needs, applied by the relay (not by the adapter).

    `fail_after_errors`: this many TransientError answers to polls in a row fail the task with
    `upstream_error` (None: they never do, like any outage). `not_found_backoff`: a poll that
    finds no such task within `not_found_window_s` of submit is not yet an error; the next polls
    come after these waits, one per miss, and then not-found means gone.
    """

    fail_after_errors: int | None = None
    not_found_window_s: float = 0.0
    not_found_backoff: tuple[float, ...] = ()


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
    unknown_status: str | None = None  # a native status the parser did not know (noted once)


@dataclass(frozen=True)
class Frames:
    """A request's images by role: the first frame, the last frame, reference images."""

    first: Image | None
    last: Image | None
    references: tuple[Image, ...]


def split_frames(images: tuple[Image, ...] | list[Image]) -> Frames:
    """An explicit role wins; an image without one is the first frame, or the last frame when
    the first is taken."""
    first = next((i for i in images if i.role == "first_frame"), None)
    last = next((i for i in images if i.role == "last_frame"), None)
    for image in images:
        if image.role is None:
            if first is None:
                first = image
            elif last is None:
                last = image
    references = tuple(i for i in images if i.role == "reference_image")
    return Frames(first, last, references)


# --- the adapter base class ---------------------------------------------------------------


class Provider(Generic[OptionsT]):
    name: ClassVar[str]
    credentials: ClassVar[tuple[str, ...]] = ("api_key",)
    default_base_url: ClassVar[str | None] = None
    needs_network: ClassVar[bool] = True
    features: frozenset[str] = frozenset()  # per instance when an option changes it
    variants: frozenset[str] = frozenset({"video"})  # per instance when an option changes it
    Options: ClassVar[type[Any]] = NoOptions
    typical_run_s: float = 180.0  # per instance when an option sets it (the demo does)
    result_ttl_s: ClassVar[float | None] = None
    poll_rules: ClassVar[PollRules] = PollRules()

    def __init__(self, channel: ChannelView[OptionsT], http: ChannelHttp | None) -> None:
        self.channel = channel
        self._http = http
        self.base_url = (channel.base_url or self.default_base_url or "").rstrip("/")
        self._unknown_noted: set[str] = set()

    @property
    def http(self) -> ChannelHttp:
        assert self._http is not None, f"provider {self.name} was built without HTTP"
        return self._http

    @classmethod
    def credentials_needed(cls, options: Mapping[str, Any]) -> tuple[str, ...]:
        """The credentials a channel with these (validated) options must give."""
        return cls.credentials

    # --- the contract ---------------------------------------------------------------------

    def refusal(self, request: VideoRequest, model: str) -> str | None:
        """Why this provider (with this upstream model) cannot do the request; no network."""
        missing = sorted(request.features() - self.features)
        if missing:
            return f"provider {self.name!r} does not support {missing[0].replace('_', ' ')}"
        return None

    def accepts(self, model: str) -> Accepts:
        """The durations and WxH sizes this upstream model takes (what a form should offer)."""
        return DEFAULT_SECONDS, DEFAULT_SIZES

    def can_remix(self, model: str) -> bool:
        return "remix" in self.features

    def can_cancel(self, model: str) -> bool:
        return "cancel" in self.features

    @property
    def min_poll_s(self) -> float:
        """The shortest wait the upstream asks for between two status checks of a job, the
        first one after submit included (later ones also honour Update.poll_after_s)."""
        return 0.0

    def check(self, request: VideoRequest, model: str) -> None:
        """Raise Unsupported with the refusal, if there is one."""
        why = self.refusal(request, model)
        if why:
            raise Unsupported(why)

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        raise NotImplementedError

    async def poll(self, task: TaskRef) -> Update:
        raise NotImplementedError

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        raise NotImplementedError

    async def refresh_content(self, task: TaskRef, variant: str) -> ContentSource | None:
        """Poll again: when the answer changes what the stored state says (a newly signed result
        URL), the source content() names from the new state is worth a try."""
        self.variant_check(variant)
        try:
            update = await self.poll(task)
            if all(task.state.get(k) == v for k, v in update.state.items()):
                return None
            return await self.content(replace(task, state={**task.state, **update.state}), variant)
        except (TaskNotFound, VariantUnavailable):
            return None

    async def remix(self, source: TaskRef, request: VideoRequest, model: str) -> Submitted:
        raise Unsupported(f"provider {self.name!r} does not support remix")

    async def delete(self, task: TaskRef) -> None:
        return None

    async def cancel(self, task: TaskRef) -> None:
        raise Unsupported(f"provider {self.name!r} cannot cancel a running video")

    # --- helpers --------------------------------------------------------------------------

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

    async def hosted_url(self, data: bytes, mime: str, *, param: str) -> str:
        """A URL on the relay's public_url that serves these bytes (as `mime`) until the task
        finishes, at most 24 h; only inside submit or remix. Raises InvalidRequest naming
        `param` when public_url is not reachable from outside (relay/hosting.py)."""
        scope = hosting.SCOPE.get()
        if scope is None:
            raise Unsupported(f"{param}: the relay can host inputs only while it submits a task")
        return await scope.url(data, mime, param)

    @staticmethod
    def live_result_url(source: TaskRef) -> str | None:
        """The source's upstream result URL (`state["video_url"]`) while its `expires_at` has
        not passed; None once it has, or when there is none."""
        url = source.state.get("video_url")
        expires = source.state.get("expires_at")
        if not isinstance(url, str) or not url:
            return None
        return None if isinstance(expires, int | float) and now() >= expires else url

    async def stored_copy_url(self, source: TaskRef, *, param: str = "video_id") -> str | None:
        """For a remix whose source's upstream URL has expired: a relay-hosted URL of the
        source's stored copy while the new task runs, or None without one. Raises
        InvalidRequest naming `param` when public_url is not reachable from outside."""
        scope = hosting.SCOPE.get()
        return None if scope is None else await scope.copy_url(source.id, param)

    async def stored_copy_bytes(self, source: TaskRef, limit: int) -> tuple[bytes, str] | None:
        """(bytes, content type) of the source's stored copy for an upstream that takes the
        video inline, or None without one (or over `limit` bytes)."""
        scope = hosting.SCOPE.get()
        return None if scope is None else await scope.copy_bytes(source.id, limit)

    async def input_url(self, item: Image | Media, *, param: str | None = None) -> str:
        """The URL to send for an image or media item: the client's own URL, else its bytes
        hosted by the relay (for upstreams that take URLs only)."""
        if item.url is not None:
            return item.url
        assert item.data is not None and item.mime is not None
        where = param or (item.param if isinstance(item, Media) else "input_reference")
        return await self.hosted_url(item.data, item.mime, param=where)

    async def hosted_inputs(self, request: VideoRequest, *, images: bool = False) -> VideoRequest:
        """The request with each reference video and audio the client sent as bytes (and, with
        `images`, each image) given a relay-hosted URL in place of its bytes."""
        media = [
            m if m.url is not None else replace(m, url=await self.input_url(m), data=None)
            for m in request.media
        ]
        pictures = list(request.images)
        if images:
            pictures = [
                i if i.url is not None else replace(i, url=await self.input_url(i), data=None)
                for i in request.images
            ]
        return replace(request, media=tuple(media), images=tuple(pictures))

    def variant_check(self, variant: str) -> None:
        if variant not in self.variants:
            raise VariantUnavailable(f"provider {self.name!r} does not produce a {variant}")

    def note_unknown_status(self, native: str) -> None:
        """Log a native status this adapter does not know, once per channel: it keeps the
        previous status and never ends a job, but it is worth a look."""
        if native in self._unknown_noted or len(self._unknown_noted) >= UNKNOWN_NOTED_MAX:
            return
        self._unknown_noted.add(native)
        log.info(
            "%s (%s): unknown upstream status %r; keeping the previous one",
            self.channel.name,
            self.name,
            native[:40],
        )


def now() -> float:
    return time.time()
