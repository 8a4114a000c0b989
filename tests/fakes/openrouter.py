"""A fake OpenRouter video API (spec/providers/openrouter.md), faithful to the page.

Under `/api/v1`: `POST /videos` answers 202 `{id, polling_url, status: "pending"}`, `GET
/videos/{id}` the job, `GET /videos/{id}/content?index=0` the bytes (Bearer required, Range
honoured), `GET /videos/models` the public capability list. Every error is the page's envelope
`{"error": {"code", "message", "metadata"}, "user_id"}` with the HTTP status equal to the code.
Values outside a model's sets are a 400; unknown keys (such as `seconds`) are ignored; data URLs
and https URLs are both taken for images (the page's "Unconfirmed" items, in every listed form).
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from tests.fakes.base import FakeUpstream, outcome

PREFIX = "/api/v1"
USER = "user_2abcFakeUser"


def _row(model_id: str, **caps: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": model_id,
        "canonical_slug": model_id,
        "name": model_id,
        "description": "…",
        "created": 1719792000,
        "hugging_face_id": None,
        "supported_resolutions": None,
        "supported_aspect_ratios": None,
        "supported_sizes": None,
        "supported_durations": None,
        "supported_frame_images": None,
        "generate_audio": None,
        "seed": None,
        "pricing_skus": {"per-video-second": "0.05"},
        "allowed_passthrough_parameters": [],
        "upscale_factor": None,
        "creativity": None,
    }
    row.update(caps)
    return row


MODELS = [
    _row(  # the page's own example row
        "google/veo-3.1-lite",
        supported_resolutions=["720p", "1080p"],
        supported_aspect_ratios=["16:9", "9:16"],
        supported_durations=[8, 4, 6],
        supported_frame_images=["first_frame", "last_frame"],
        generate_audio=True,
        seed=True,
        allowed_passthrough_parameters=["personGeneration", "negativePrompt", "enhancePrompt"],
    ),
    _row(
        "bytedance/seedance-2.0",
        supported_resolutions=["480p", "720p", "1080p"],
        supported_aspect_ratios=["16:9", "4:3", "1:1", "3:4", "9:16", "21:9"],
        supported_durations=list(range(4, 16)),
        supported_frame_images=["first_frame", "last_frame"],
        generate_audio=True,
        seed=True,
    ),
    _row(
        "openai/sora-2-pro",
        supported_resolutions=["720p", "1080p"],
        supported_aspect_ratios=["16:9", "9:16"],
        supported_sizes=[
            "1280x720",
            "720x1280",
            "1792x1024",
            "1024x1792",
            "1920x1080",
            "1080x1920",
        ],
        supported_durations=[4, 8, 12],
        supported_frame_images=["first_frame"],
        generate_audio=False,
        seed=False,
    ),
    _row(  # null capabilities: no audio, no seed, no frame types (images go as references)
        "alibaba/wan-2.6",
        supported_resolutions=["720p", "1080p"],
        supported_aspect_ratios=["16:9", "9:16", "1:1"],
        supported_durations=[5, 10],
    ),
    _row("topaz/video-upscale", upscale_factor=[2, 4], creativity=None),  # ignored by the relay
]


@dataclass
class Job:
    id: str
    body: dict[str, Any]
    outcome: str
    generation_id: str
    polls: int = 0


@dataclass
class Scripted:
    status: int
    message: str
    metadata: Any = None
    retry_after: str | None = None


class OpenRouterFake(FakeUpstream):
    name: ClassVar[str] = "openrouter"
    supports_delete: ClassVar[bool] = False  # no documented delete or cancel
    renews_urls: ClassVar[bool] = False  # `/content` is one fixed route; gone is gone
    retry_after_header: ClassVar[bool] = True

    def __init__(self, api_key: str = "sk-or-v1-fake0123456789abcdef") -> None:
        self.api_key = api_key
        self.jobs: dict[str, Job] = {}
        self.models: list[dict[str, Any]] = [dict(m) for m in MODELS]
        self._ids = itertools.count(1)
        self.next_submit: list[Scripted] = []
        self.next_poll: list[Scripted] = []
        self.next_content: list[Scripted] = []
        # the page's odd and unconfirmed cases, chosen per test
        self.relative_polling_url = False  # `/api/v1/videos/{id}` instead of absolute
        self.generation_id_on_create = False  # the reference example has it, the guide's not
        self.terminal: str | None = None  # "cancelled" / "expired" instead of the outcome
        self.no_urls = False  # completed with an empty `unsigned_urls`
        self.storage_urls = False  # `unsigned_urls` on a foreign storage host
        self.presigned_urls = False  # a `urls` array of pre-signed storage URLs (unconfirmed)
        self.content_gone = False  # `/content` answers 404 (past retention)
        self.content_fetch_fails = False  # `/content` answers the page's 502
        self.models_down = False  # `/videos/models` answers 500
        self.content_auth: list[str | None] = []
        super().__init__()

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post(f"{PREFIX}/videos", self._create)
        router.add_get(f"{PREFIX}/videos/models", self._models)
        router.add_get(f"{PREFIX}/videos/{{id}}", self._poll)
        router.add_get(f"{PREFIX}/videos/{{id}}/content", self._content)

    def channel(self, base_url: str) -> dict[str, Any]:
        return {
            "name": "openrouter",
            "provider": "openrouter",
            "base_url": base_url + PREFIX,
            "api_key": self.api_key,
            "models": ["sora-2", "google/veo-3.1-lite", "openai/sora-2-pro", "alibaba/wan-2.6"],
            "model_map": {"sora-2": "bytedance/seedance-2.0"},
        }

    # --- knobs ------------------------------------------------------------------------

    def fail_next(
        self,
        op: str,
        status: int,
        message: str,
        metadata: Any = None,
        retry_after: str | None = None,
    ) -> None:
        queue = {"submit": self.next_submit, "poll": self.next_poll, "content": self.next_content}
        queue[op].append(Scripted(status, message, metadata, retry_after))

    def contract_error(self, op: str, kind: str, retry_after: int | None = None) -> None:
        if kind == "auth":
            self.fail_next(op, 401, "User not found.")
        elif kind == "rate_limit":
            after = str(retry_after) if retry_after is not None else None
            self.fail_next(op, 429, "Rate limit exceeded", retry_after=after)
        else:
            raise ValueError(f"no contract error {kind!r}")

    def forget_tasks(self) -> None:
        self.jobs.clear()

    def expire_urls(self) -> None:
        super().expire_urls()
        self.content_gone = True

    def creates(self) -> list[Any]:
        return [r for r in self.requests if r.method == "POST" and r.path == f"{PREFIX}/videos"]

    def foreign_url(self, name: str) -> str:
        """A CDN URL on another host name of the same server: not the API's origin."""
        return self.cdn_url(name).replace("://127.0.0.1:", "://localhost:")

    # --- native answers ---------------------------------------------------------------------

    @staticmethod
    def error(
        status: int, message: str, metadata: Any = None, headers: dict[str, str] | None = None
    ) -> web.Response:
        body = {"error": {"code": status, "message": message, "metadata": metadata}}
        body["user_id"] = USER
        return web.json_response(body, status=status, headers=headers)

    def _scripted(self, queue: list[Scripted]) -> web.Response | None:
        if not queue:
            return None
        s = queue.pop(0)
        headers = {"Retry-After": s.retry_after} if s.retry_after else None
        return self.error(s.status, s.message, s.metadata, headers)

    def _refused(self, request: web.Request) -> web.Response | None:
        given = request.headers.get("Authorization")
        if not given:
            return self.error(401, "Missing Authentication header")
        if given != f"Bearer {self.api_key}":
            return self.error(401, "User not found.")
        return None

    def _polling_url(self, request: web.Request, job_id: str) -> str:
        path = f"{PREFIX}/videos/{job_id}"
        return path if self.relative_polling_url else self.url(path)

    # --- handlers -------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        if self.models_down:
            return self.error(500, "Internal Server Error")
        return web.json_response({"data": self.models})  # public: no key needed

    async def _create(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        scripted = self._scripted(self.next_submit)
        if scripted is not None:
            return scripted
        try:
            body = await request.json()
        except ValueError:
            return self.error(400, "Invalid request parameters")
        if not isinstance(body, dict):
            return self.error(400, "Invalid request parameters")
        row = next((m for m in self.models if m["id"] == body.get("model")), None)
        if row is None:
            return self.error(404, "Resource not found")
        problem = self._invalid(body, row)
        if problem is not None:
            return self.error(400, problem)
        result = outcome(body.get("prompt") or "")
        if result == "reject":
            reasons = {
                "reasons": ["violence"],
                "flagged_input": body["prompt"][:50],
                "provider_name": None,
                "model_slug": row["id"],
            }
            return self.error(403, f"{row['id']} requires moderation. Input was flagged", reasons)
        job = Job(secrets.token_urlsafe(15)[:20], body, result, f"gen-{next(self._ids)}-AbCdEfGh")
        self.jobs[job.id] = job
        answer = {
            "id": job.id,
            "polling_url": self._polling_url(request, job.id),
            "status": "pending",
        }
        if self.generation_id_on_create:
            answer["generation_id"] = job.generation_id
        return web.json_response(answer, status=202)

    def _invalid(self, body: dict[str, Any], row: dict[str, Any]) -> str | None:
        """Why a body is a 400 (the page: values outside the model's sets, a field the model
        does not have); unknown keys are ignored."""
        prompt = body.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            return "prompt must be a string"
        if not prompt and not body.get("frame_images"):
            return "prompt is required"
        duration = body.get("duration")
        if duration is not None:
            if type(duration) is not int or duration < 1:
                return "duration must be an integer >= 1"
            if duration not in row["supported_durations"]:
                return f"duration {duration} is not supported by {row['id']}"
        for field, key in (
            ("resolution", "supported_resolutions"),
            ("aspect_ratio", "supported_aspect_ratios"),
        ):
            if field in body and body[field] not in (row[key] or ()):
                return f"{field} {body[field]!r} is not supported by {row['id']}"
        if "size" in body:
            if "resolution" in body or "aspect_ratio" in body:
                return "size cannot be combined with resolution or aspect_ratio"
            if row["supported_sizes"] is not None and body["size"] not in row["supported_sizes"]:
                return f"size {body['size']!r} is not supported by {row['id']}"
        for flag in ("generate_audio", "seed"):
            if flag in body and row[flag] is not True:
                return f"{flag} is not supported by {row['id']}"
        if "seed" in body and type(body["seed"]) is not int:
            return "seed must be an integer"
        return self._invalid_inputs(body, row)

    def _invalid_inputs(self, body: dict[str, Any], row: dict[str, Any]) -> str | None:
        for item in body.get("frame_images") or ():
            if not _url_item(item, "image_url"):
                return "frame_images items must be image_url parts"
            if item.get("frame_type") not in (row["supported_frame_images"] or ()):
                return f"frame_type {item.get('frame_type')!r} is not supported by {row['id']}"
        for item in body.get("input_references") or ():
            kind = item.get("type") if isinstance(item, dict) else None
            if kind not in ("image_url", "audio_url", "video_url") or not _url_item(item, kind):
                return "input_references items must be image_url, audio_url or video_url parts"
        options = (body.get("provider") or {}).get("options") or {}
        for slug_options in options.values():
            for key in (
                (slug_options.get("parameters") or {}) if isinstance(slug_options, dict) else ()
            ):
                if key not in row["allowed_passthrough_parameters"]:
                    return f"passthrough parameter {key!r} is not allowed for {row['id']}"
        return None

    async def _poll(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        scripted = self._scripted(self.next_poll)
        if scripted is not None:
            return scripted
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return self.error(404, "Resource not found")
        job.polls += 1
        answer: dict[str, Any] = {
            "id": job.id,
            "polling_url": f"{PREFIX}/videos/{job.id}",
            "status": "pending",
        }
        if job.polls == 1 and self.polls_to_finish > 1:
            return web.json_response(answer)
        answer["generation_id"] = job.generation_id
        if job.polls < self.polls_to_finish:
            answer["status"] = "in_progress"
        elif self.terminal == "cancelled":
            answer.update(status="cancelled", error="Job was cancelled", generation_id=None)
        elif self.terminal == "expired":
            answer.update(status="expired", error="Job exceeded maximum time to live")
            del answer["generation_id"]
        elif job.outcome == "fail":
            answer.update(status="failed", error="Provider returned error: generation failed")
        elif job.outcome == "moderation":
            answer.update(status="failed", error="Content policy violation")
        else:
            answer.update(status="completed", unsigned_urls=self._results(job))
            answer["usage"] = {"cost": 0.4, "is_byok": False}
            if self.presigned_urls:
                answer["urls"] = [self.foreign_url(f"{job.id}.mp4")]
        return web.json_response(answer)

    def _results(self, job: Job) -> list[str]:
        self.files[f"{job.id}.mp4"] = self.files["video.mp4"]
        if self.no_urls:
            return []
        if self.storage_urls:
            return [self.foreign_url(f"{job.id}.mp4")]
        return [self.url(f"{PREFIX}/videos/{job.id}/content?index=0")]

    async def _content(self, request: web.Request) -> web.StreamResponse:
        self.content_auth.append(request.headers.get("Authorization"))
        refused = self._refused(request)
        if refused is not None:
            return refused
        scripted = self._scripted(self.next_content)
        if scripted is not None:
            return scripted
        job = self.jobs.get(request.match_info["id"])
        done = job is not None and job.polls >= self.polls_to_finish and job.outcome == "complete"
        if not done or self.content_gone or request.query.get("index", "0") != "0":
            return self.error(404, "Resource not found")
        if self.content_fetch_fails:
            return self.error(502, "Provider returned error", {"provider_name": "Google"})
        request.match_info["name"] = "video.mp4"  # proxied bytes, served as the CDN serves them
        return await self._serve_cdn(request)


def _url_item(item: Any, kind: str) -> bool:
    inner = item.get(kind) if isinstance(item, dict) else None
    url = inner.get("url") if isinstance(inner, dict) else None
    return isinstance(url, str) and url.startswith(("https://", "http://", "data:"))
