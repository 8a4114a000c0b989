"""A fake xAI video API (spec/providers/xai.md), faithful to the page.

`Authorization: Bearer <key>`, JSON bodies only (a form body is refused). Three create paths
answer `{"request_id"}`; `GET /v1/videos/{id}` answers the status object: `pending` (no
`progress` on the first poll, then a rising one), `done` with a `vidgen`-style public URL on the
CDN, `failed`, `expired`. Error bodies are `{"code": "<status phrase>", "error": "<message>"}`.
The page's unconfirmed points are knobs, and every listed form is accepted: image items keyed
`url`, `image_url` or `file_id`; a bad key answered 400 (xAI's own digest, the default) or 401;
a failed job's `error` as an object or a string; text-only on grok-imagine-video-1.5 on or off.
The page shows no Retry-After on a 429, so none is sent.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from tests.fakes.base import VIDEO, FakeUpstream, outcome

BASE, V15, PREVIEW = (
    "grok-imagine-video",
    "grok-imagine-video-1.5",
    "grok-imagine-video-1.5-preview",
)
MODELS = (BASE, V15, PREVIEW)
RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3")
SIZES = ("848x480", "1696x960", "1280x720", "1920x1080")  # the reference's unconfirmed `size`
IMAGE_KEYS = ("url", "image_url", "file_id")
GENERATION_FIELDS = frozenset({
    "model", "prompt", "duration", "aspect_ratio", "resolution", "image", "reference_images",
    "reference_audios", "generate_audio", "output", "storage_options", "user", "size",
})  # fmt: skip
EDIT_FIELDS = frozenset({"model", "prompt", "video", "output", "storage_options", "user"})
EXTENSION_FIELDS = EDIT_FIELDS | {"duration"}
DATA_URL = re.compile(r"^data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=]+$")
PHRASES = {
    400: "Client specified an invalid argument",
    401: "Request had invalid authentication credentials",
    403: "The caller does not have permission to execute the specified operation",
    404: "Some requested entity was not found",
    422: "Unprocessable Entity",
    429: "Too many requests",
    500: "Internal error",
    503: "The service is currently unavailable",
}
BAD_KEY = (
    "Incorrect API key provided: {masked}. You can obtain an API key from https://console.x.ai."
)
CREDITS = (
    "Your team 5f3c9a1e-0000-4000-8000-000000000000 has either used all available credits or "
    "reached its monthly spending limit. To continue making API requests, please purchase more "
    "credits or raise your spending limit."
)
TICKS_PER_SECOND = 500_000_000  # the page's 1-second clip: USD 0.05


class NativeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Job:
    id: str
    kind: str  # generations, edits, extensions
    body: dict[str, Any]
    outcome: str
    duration: int
    polls: int = 0
    expired: bool = False
    file: str = ""


@dataclass
class Scripted:
    status: int
    message: str
    headers: dict[str, str] | None = None


DATA_URL_CLIP_S = 6  # what the fake takes a clip sent inline to last (it cannot probe one)


class XaiFake(FakeUpstream):
    name: ClassVar[str] = "xai"
    supports_delete: ClassVar[bool] = False  # no cancel, delete or list route
    renews_urls: ClassVar[bool] = False  # a lapsed URL is reported as `expired`, never re-signed
    retry_after_header: ClassVar[bool] = False

    def __init__(self, api_key: str = "xai-test-key-0123456789abcdef") -> None:
        self.api_key = api_key
        self.edit_sources: list[bytes] = []  # clips an edit sent as data URLs
        self.jobs: dict[str, Job] = {}
        # the page's unconfirmed points
        self.bad_key_status = 400  # 401 in some clients
        self.error_as_string = False  # a failed job's `error` as a plain string
        self.moderation_as_failed = False  # output moderation as `failed` + a string error
        self.v15_text_to_video = True  # an early client marked 1.5 image-only
        self.default_duration = 6  # 6, 8 and 10 are all claimed
        self.status_override: str | None = None  # answer this status to every poll
        self.next_submit: list[Scripted] = []
        self.next_poll: list[Scripted] = []
        super().__init__()

    def routes(self, router: web.UrlDispatcher) -> None:
        for kind in ("generations", "edits", "extensions"):
            router.add_post(f"/v1/videos/{kind}", self._create)
        router.add_get("/v1/videos/{id}", self._poll)

    def channel(self, base_url: str, **overrides: Any) -> dict[str, Any]:
        return {
            "name": "xai",
            "provider": "xai",
            "base_url": base_url,
            "api_key": self.api_key,
            "models": ["sora-2", BASE, V15, PREVIEW],
            "model_map": {"sora-2": BASE},
            **overrides,
        }

    # --- knobs ------------------------------------------------------------------------

    def fail_next(
        self, op: str, status: int, message: str = "", retry_after: str | None = None
    ) -> None:
        queue = {"submit": self.next_submit, "poll": self.next_poll}[op]
        queue.append(
            Scripted(status, message, {"Retry-After": retry_after} if retry_after else None)
        )

    def contract_error(self, op: str, kind: str, retry_after: int | None = None) -> None:
        if kind == "auth":
            self.fail_next(op, self.bad_key_status, self._bad_key_message("xai-wrong"))
        elif kind == "rate_limit":
            self.fail_next(op, 429, "Too many requests, please slow down")
        else:
            raise ValueError(f"no contract error {kind!r}")

    def forget_tasks(self) -> None:
        self.jobs.clear()

    def expire_urls(self) -> None:
        """The temporary URL lapses: the CDN refuses it and the job reports `expired`."""
        super().expire_urls()
        for job in self.jobs.values():
            if job.polls >= self.polls_to_finish and job.outcome == "complete":
                job.expired = True

    def creates(self, kind: str = "generations") -> list[Any]:
        return [r.json() for r in self.calls(f"/v1/videos/{kind}", "POST")]

    # --- native answers ---------------------------------------------------------------------

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        body = {"code": PHRASES.get(status, "Unknown"), "error": message}
        return web.json_response(body, status=status, headers=headers)

    def _bad_key_message(self, given: str) -> str:
        return BAD_KEY.format(masked=f"{given[:2]}***{given[-2:]}" if len(given) > 4 else "***")

    def _auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if header == f"Bearer {self.api_key}":
            return None
        given = header.removeprefix("Bearer ")
        return self.error(self.bad_key_status, self._bad_key_message(given))

    def _scripted(self, queue: list[Scripted]) -> web.Response | None:
        if not queue:
            return None
        s = queue.pop(0)
        return self.error(s.status, s.message or PHRASES.get(s.status, "error"), s.headers)

    # --- create ---------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        refused = self._auth(request) or self._scripted(self.next_submit)
        if refused is not None:
            return refused
        if request.content_type != "application/json":
            return self.error(400, "Request body must be JSON")
        try:
            body = await request.json()
        except ValueError:
            return self.error(400, "Failed to parse the request body as JSON")
        kind = request.path.rsplit("/", 1)[1]
        try:
            duration = {
                "generations": self._generation,
                "edits": self._edit,
                "extensions": self._extension,
            }[kind](body)
        except NativeError as exc:
            return self.error(exc.status, exc.message)
        result = outcome(body["prompt"])
        if result == "reject":
            return self.error(
                403, "Your request was rejected as a result of our safety system: content "
                "violates usage guidelines."
            )  # fmt: skip
        if "#expired" in body["prompt"]:
            result = "expired"
        job = Job(str(uuid.uuid4()), kind, body, result, duration)
        self.jobs[job.id] = job
        return web.json_response({"request_id": job.id})

    def _common(self, body: Any, allowed: frozenset[str]) -> str:
        if not isinstance(body, dict):
            raise NativeError(400, "Request body must be an object")
        for name in ("model", "prompt"):
            if name not in body:
                raise NativeError(
                    422, f"Failed to deserialize the JSON body: missing field `{name}`"
                )
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise NativeError(
                422, f"Failed to deserialize the JSON body: unknown field `{unknown[0]}`"
            )
        model, prompt = body["model"], body["prompt"]
        if model not in MODELS:
            raise NativeError(
                404, f"The model {model} does not exist or your team does not have access to it."
            )
        if not isinstance(prompt, str) or not prompt or len(prompt) > 4096:
            raise NativeError(400, "prompt must be a non-empty string of at most 4096 characters")
        for name, kind in (("generate_audio", bool), ("user", str), ("output", dict),
                           ("storage_options", dict)):  # fmt: skip
            if name in body and not isinstance(body[name], kind):
                raise NativeError(
                    422, f"Failed to deserialize the JSON body: invalid type for `{name}`"
                )
        return str(model)

    def _generation(self, body: Any) -> int:
        model = self._common(body, GENERATION_FIELDS)
        references = body.get("reference_images")
        audios = body.get("reference_audios")
        image = body.get("image")
        if model == PREVIEW and image is None:
            raise NativeError(400, "Text-to-video is not supported for this model")
        if model == V15 and image is None and references is None and not self.v15_text_to_video:
            raise NativeError(400, "Text-to-video is not supported for this model")
        if image is not None:
            self._image(image, "image")
        if (references is not None or audios is not None) and model != V15:
            raise NativeError(400, "Reference images and audios are not supported for this model")
        if references is not None:
            if image is not None:
                raise NativeError(400, "image cannot be combined with reference_images")
            if not isinstance(references, list) or not 1 <= len(references) <= 7:
                raise NativeError(400, "reference_images must hold 1 to 7 images")
            for item in references:
                self._image(item, "reference_images")
        if audios is not None:
            ok = isinstance(audios, list) and len(audios) <= 3 and all(
                isinstance(a, dict) and set(a) == {"voice_id"} and isinstance(a["voice_id"], str)
                for a in audios
            )  # fmt: skip
            if not ok:
                raise NativeError(400, "reference_audios takes at most 3 items of {voice_id}")
        with_refs = references is not None or audios is not None
        duration = body.get("duration", self.default_duration)
        if type(duration) is not int or not 1 <= duration <= (10 if with_refs else 15):
            raise NativeError(
                400, f"duration must be an integer from 1 to {10 if with_refs else 15}"
            )
        ratio = body.get("aspect_ratio", "16:9")
        if ratio not in RATIOS:
            raise NativeError(400, f"Invalid aspect_ratio: {ratio}")
        resolution = body.get("resolution", "480p")
        allowed = ("480p", "720p", "1080p") if model == V15 and not with_refs else ("480p", "720p")
        if resolution not in allowed:
            raise NativeError(400, f"Invalid resolution {resolution} for this model")
        if "size" in body and body["size"] not in SIZES:
            raise NativeError(400, f"Invalid size: {body['size']}")
        return duration

    def _image(self, item: Any, field: str) -> None:
        if not isinstance(item, dict) or len(item) != 1 or next(iter(item)) not in IMAGE_KEYS:
            raise NativeError(400, f"{field}: an item takes one of url, image_url or file_id")
        value = next(iter(item.values()))
        if not isinstance(value, str) or not (
            value.startswith("https://")
            or value.startswith("http://")
            or DATA_URL.match(value)
            or next(iter(item)) == "file_id"
        ):
            raise NativeError(400, f"{field}: the image must be an https URL or a data URL")

    def _source(self, body: dict[str, Any]) -> Job:
        video = body.get("video")
        if body["model"] != BASE:
            raise NativeError(400, "Video editing is not supported for this model")
        if not isinstance(video, dict) or not isinstance(video.get("url"), str):
            raise NativeError(422, "Failed to deserialize the JSON body: missing field `video`")
        url = video["url"]
        for job in self.jobs.values():
            if job.file and url == self._url_of(job):
                if job.expired or self._relative(url) in self.expired:
                    raise NativeError(400, "Failed to download the input video")
                return job
        raise NativeError(400, "Failed to download the input video")

    def _edit(self, body: Any) -> int:
        self._common(body, EDIT_FIELDS)
        video = body.get("video")
        url = video.get("url") if isinstance(video, dict) else None
        if isinstance(url, str) and url.startswith("data:"):  # the page: a data URL works too
            header, _, payload = url.partition(",")
            data = base64.b64decode(payload) if header.endswith(";base64") else b""
            if not header.startswith("data:video/") or data[4:8] != b"ftyp":
                raise NativeError(400, "Failed to download the input video")
            self.edit_sources.append(data)
            return DATA_URL_CLIP_S
        source = self._source(body)
        if source.duration > 8.7:
            raise NativeError(400, "The input video must be at most 8.7 seconds long")
        return source.duration

    def _extension(self, body: Any) -> int:
        self._common(body, EXTENSION_FIELDS)
        source = self._source(body)
        added = body.get("duration", 6)
        if type(added) is not int or not 2 <= added <= 10:
            raise NativeError(400, "duration must be an integer from 2 to 10")
        if not 2 <= source.duration <= 15:
            raise NativeError(400, "The input video must be 2 to 15 seconds long")
        return source.duration + added

    # --- poll ---------------------------------------------------------------------------------

    async def _poll(self, request: web.Request) -> web.Response:
        refused = self._auth(request) or self._scripted(self.next_poll)
        if refused is not None:
            return refused
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return self.error(404, f"No deferred request with id {request.match_info['id']}")
        job.polls += 1
        model = job.body["model"]
        answer: dict[str, Any] = {"status": "pending", "model": model}
        if self.status_override is not None:
            answer["status"] = self.status_override
        elif job.expired or (job.outcome == "expired" and job.polls >= self.polls_to_finish):
            answer["status"] = "expired"
        elif job.polls < self.polls_to_finish:
            if job.polls > 1:  # absent early, then moving
                answer["progress"] = int(100 * job.polls / self.polls_to_finish)
        elif job.outcome == "fail":
            answer["status"] = "failed"
            answer["error"] = (
                "Video generation failed"
                if self.error_as_string
                else {"code": "internal_error", "message": "Video generation failed"}
            )
        elif job.outcome == "moderation" and self.moderation_as_failed:
            answer.update(status="failed", error="Generated video rejected by content moderation.")
        elif job.outcome == "moderation":
            answer.update(
                status="done",
                video={"url": "", "duration": job.duration, "respect_moderation": False},
                usage={"cost_in_usd_ticks": TICKS_PER_SECOND * job.duration},
            )
        else:
            if not job.file:
                job.file = f"xai-video-{uuid.uuid4()}.mp4"
                self.files[job.file] = VIDEO
            answer.update(
                status="done",
                progress=100,
                video={
                    "url": self._url_of(job),
                    "duration": job.duration,
                    "respect_moderation": True,
                },
                usage={"cost_in_usd_ticks": TICKS_PER_SECOND * job.duration},
            )
        return web.json_response(answer)

    def _url_of(self, job: Job) -> str:
        return self.cdn_url(job.file)

    def _relative(self, url: str) -> str:
        return url.removeprefix(self.base_url)
