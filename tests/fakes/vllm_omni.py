"""A fake vLLM-Omni server (shared/spec/providers/vllm-omni.md): the `openai` provider with
`options = { vllm_omni = true }` in front of a local GPU box.

It does what the page says the server does: one served model (another `model` is a 400 "Model
mismatch"); multipart only (a JSON body misses the `prompt` form field); `seconds`/`size`
patterns checked; `input_reference` only as a file part (bracket fields and unknown fields are
dropped silently); auth off unless the server has a key, then 401 `{"error": "Unauthorized"}`;
`progress` 0 until done; a failed job answers the poll with HTTP = `error.code` and the whole
video object; `/content` has no variants (`?variant=` ignored); `DELETE` cancels a running job;
everything lives in memory, so `restart()` forgets every id.

Knobs (the page's "Unconfirmed" items, each form accepted by the adapter):
    api_key           None: auth off (the default); a key: every /v1 path needs the Bearer
    error_style       "detail": FastAPI's {"detail": "..."}; "envelope": vLLM's OpenAI envelope
    validation_status 400 (vLLM's handler) or 422 (FastAPI's default) for a bad form
    failure_status    the HTTP status (= error.code) a "#fail" job ends with
    ready             False: every video route answers 503 "handler not initialized"
    delete_conflicts  how many DELETEs answer 409 "Video output not yet available" first
    slow_cancels      how many DELETEs of a queued or running job answer 409 "Cancellation in
                      progress. Please try again later." (the stop takes over 2 s; it still
                      happens)
    echo_key          the 401 repeats the key it got (a careless proxy in front)
    fail_next(route, status, body)   the next call of a route gets this answer instead
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any, ClassVar

from aiohttp import web

from tests.fakes.base import VIDEO, FakeUpstream, outcome
from tests.fakes.openai import Answers, FormFile, byte_response, parse_form

SERVED = "Wan-AI/Wan2.2-T2V-A14B-Diffusers"
DEFAULT_FPS = 24
ROUTES = ("create", "retrieve", "content", "delete", "list", "models")
OOM = "CUDA out of memory. Tried to allocate 2.50 GiB (GPU 0; 79.15 GiB total capacity)"


class FakeVllmOmni(FakeUpstream):
    name: ClassVar[str] = "vllm-omni"
    provider: ClassVar[str] = "openai"  # the registry name the relay reaches it with
    moderates: ClassVar[bool] = False  # no content policy: a safety checker would just fail it
    supports_delete: ClassVar[bool] = True
    supports_cancel: ClassVar[bool] = True  # the same DELETE, on a queued or running job
    renews_urls: ClassVar[bool] = True  # /content is the server's own, it never expires
    retry_after_header: ClassVar[bool] = False  # its "retry later" is a bare 503

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.videos: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.outcomes: dict[str, str] = {}
        self.created: list[dict[str, Any]] = []  # each create's fields and files, as read
        self.answers = Answers()
        self.error_style = "detail"
        self.validation_status = 400
        self.failure_status = 500
        self.ready = True
        self.delete_conflicts = 0
        self.slow_cancels = 0
        self.echo_key = False
        self.restarts = 0

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/videos", self.create)
        router.add_get("/v1/videos", self.list_videos)
        router.add_get("/v1/videos/{video_id}", self.retrieve)
        router.add_delete("/v1/videos/{video_id}", self.delete)
        router.add_get("/v1/videos/{video_id}/content", self.content)
        router.add_get("/v1/models", self.models)

    def channel(self, base_url: str, **extra: Any) -> dict[str, Any]:
        options = {"vllm_omni": True, **extra.pop("options", {})}
        return {
            "name": "vllm",
            "provider": "openai",
            "base_url": base_url + "/v1",
            **({"api_key": self.api_key} if self.api_key else {}),
            "models": ["sora-2", "wan2.2"],
            "model_map": {"sora-2": SERVED},
            "options": options,
            **extra,
        }

    # --- knobs ------------------------------------------------------------------------

    def fail_next(self, route: str, status: int, body: Any) -> None:
        assert route in ROUTES, route
        self.answers.push(route, status, body, None)

    def restart(self) -> None:
        """The process restarts: every job record is gone (the files may stay on disk)."""
        self.videos.clear()
        self.polls.clear()
        self.restarts += 1

    def contract_error(self, op: str, kind: str, retry_after: int | None = None) -> None:
        route = {"submit": "create", "poll": "retrieve"}[op]
        if kind == "auth":
            self.fail_next(route, 401, {"error": "Unauthorized"})
        elif kind == "rate_limit":  # the server is still loading its model
            self.fail_next(route, 503, self.error_body(503, NOT_READY))
        else:
            raise ValueError(f"no contract error {kind!r}")

    def forget_tasks(self) -> None:
        self.restart()

    # --- answers ------------------------------------------------------------------------

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        if self.error_style == "envelope":
            kind = {400: "BadRequestError", 404: "NotFoundError"}.get(status, "InternalServerError")
            return {"error": {"message": message, "type": kind, "param": None, "code": status}}
        return {"detail": message}

    def http_error(self, status: int, message: str) -> web.Response:
        return web.json_response(self.error_body(status, message), status=status)

    def invalid(self, field: str, message: str, kind: str = "value_error") -> web.Response:
        """A request-validation failure, as FastAPI or vLLM's handler writes it."""
        status = self.validation_status
        if self.error_style == "envelope":
            return self.http_error(status, f"{field}: {message}")
        detail = [{"type": kind, "loc": ["body", field], "msg": message, "input": None}]
        return web.json_response({"detail": detail}, status=status)

    def gate(self, request: web.Request, route: str) -> web.Response | None:
        """Queued knob answers first, then the key middleware, then readiness."""
        queued = self.answers.take(route)
        if queued is not None:
            return queued
        if self.api_key is not None:
            given = request.headers.get("Authorization", "")
            if given != f"Bearer {self.api_key}":
                if self.echo_key:
                    return web.json_response({"error": f"Unauthorized: {given}"}, status=401)
                return web.json_response({"error": "Unauthorized"}, status=401)
        if not self.ready and route != "models":
            return self.http_error(503, NOT_READY)
        return None

    # --- the API ------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        if (refused := self.gate(request, "create")) is not None:
            return refused
        raw = await request.read()
        if request.content_type != "multipart/form-data":
            # FastAPI's Form() reads no JSON: the required prompt is simply missing
            return self.invalid("prompt", "Field required", "missing")
        fields, files = parse_form(request.headers["Content-Type"], raw)
        if "prompt" not in fields:
            return self.invalid("prompt", "Field required", "missing")
        problem = self.validate(fields, files)
        if problem is not None:
            return problem
        self.created.append({"fields": fields, "files": files})
        video = self.new_video(fields)
        return web.json_response(video)

    def validate(self, fields: dict[str, Any], files: dict[str, FormFile]) -> web.Response | None:
        model = fields.get("model")
        if model is not None and model != SERVED:
            return self.http_error(
                400,
                f"Model mismatch: request specifies '{model}' but server is running '{SERVED}'.",
            )
        seconds = fields.get("seconds")
        if seconds is not None and not (seconds.isdigit() and not seconds.startswith("0")):
            return self.invalid("seconds", "String should match pattern '^[1-9]\\d*$'")
        size = fields.get("size")
        if size is not None and not _wxh(size):
            return self.invalid("size", "String should match pattern '^\\d+x\\d+$'")
        if "input_reference" in files and "image_reference" in fields:
            return self.http_error(
                400, "Provide either input_reference or image_reference, not both."
            )
        for name in ("lora", "extra_params", "image_reference"):
            if name in fields:
                try:
                    json.loads(fields[name])
                except ValueError:
                    return self.http_error(400, "Invalid JSON in form field.")
        return None

    def new_video(self, fields: dict[str, Any]) -> dict[str, Any]:
        video_id = "video_gen_" + secrets.token_hex(16)
        video = {
            "id": video_id,
            "object": "video",
            "status": "queued",
            "model": SERVED,
            "prompt": fields["prompt"],
            "size": fields.get("size"),
            "progress": 0,
            # the echo defaults to "4" even though the frame count comes from the model
            "seconds": fields.get("seconds", "4"),
            "quality": "default",
            "created_at": int(time.time()),
            "completed_at": None,
            "remixed_from_video_id": None,
            "error": None,
            "media_type": "video/mp4",
            "expires_at": None,
            "file_name": None,
            "inference_time_s": None,
            "stage_durations": {},
            "peak_memory_mb": 0.0,
        }
        self.videos[video_id] = video
        self.polls[video_id] = 0
        self.outcomes[video_id] = outcome(video["prompt"])
        return dict(video)

    def advance(self, video: dict[str, Any]) -> None:
        if video["status"] in ("completed", "failed"):
            return
        polls = self.polls[video["id"]] = self.polls[video["id"]] + 1
        if polls < self.polls_to_finish:
            video["status"] = "in_progress"  # progress stays 0: no live percentage
            return
        now = int(time.time())
        if self.outcomes[video["id"]] in ("fail", "moderation"):
            video.update(
                status="failed",
                completed_at=now,
                inference_time_s=58.1,
                error={"code": self.failure_status, "message": OOM},
            )
        else:
            video.update(
                status="completed",
                progress=100,
                completed_at=now,
                file_name=f"{video['id']}.mp4",
                inference_time_s=251.7,
                stage_durations={"denoise": 240.2, "vae_decode": 9.8},
                peak_memory_mb=61234.5,
            )
            self.files[video["file_name"]] = VIDEO

    def unknown(self) -> web.Response:
        return self.http_error(404, "Video not found")

    async def retrieve(self, request: web.Request) -> web.Response:
        if (refused := self.gate(request, "retrieve")) is not None:
            return refused
        video = self.videos.get(request.match_info["video_id"])
        if video is None:
            return self.unknown()
        self.advance(video)
        status = 200
        if video["status"] == "failed":
            status = video["error"]["code"]  # the job's failure, as the poll's HTTP status
        return web.json_response(video, status=status)

    async def list_videos(self, request: web.Request) -> web.Response:
        if (refused := self.gate(request, "list")) is not None:
            return refused
        order = request.query.get("order", "desc")
        limit = int(request.query.get("limit", "20"))
        data = sorted(self.videos.values(), key=lambda v: v["created_at"], reverse=order == "desc")
        after = request.query.get("after")
        if after is not None:
            ids = [v["id"] for v in data]
            data = data[ids.index(after) + 1 :] if after in ids else []
        page = data[:limit]
        return web.json_response(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(data) > limit,
            }
        )

    async def content(self, request: web.Request) -> web.StreamResponse:
        if (refused := self.gate(request, "content")) is not None:
            return refused
        video = self.videos.get(request.match_info["video_id"])
        if video is None:
            return self.unknown()
        if video["status"] == "failed":
            return self.http_error(
                422, "Video generation failed. Check job status for error details."
            )
        if video["status"] != "completed":
            return self.http_error(404, "Generation is still in-progress")
        data = self.files.get(video["file_name"])
        if data is None:
            return self.http_error(404, "Generated video file not found on disk")
        # a file download; any ?variant= is ignored
        response = byte_response(request, data, "video/mp4")
        response.headers["Content-Disposition"] = f'attachment; filename="{video["file_name"]}"'
        return response

    async def delete(self, request: web.Request) -> web.Response:
        if (refused := self.gate(request, "delete")) is not None:
            return refused
        video_id = request.match_info["video_id"]
        video = self.videos.get(video_id)
        if video is None:
            return self.unknown()
        if self.delete_conflicts:
            self.delete_conflicts -= 1
            return self.http_error(409, "Video output not yet available. Please try again later.")
        # queued or running: cancelled; finished: its record and file go
        if self.slow_cancels and video["status"] in ("queued", "in_progress"):
            self.slow_cancels -= 1
            del self.videos[video_id]
            return self.http_error(409, "Cancellation in progress. Please try again later.")
        del self.videos[video_id]
        if video["file_name"]:
            self.files.pop(video["file_name"], None)
        return web.json_response({"id": video_id, "object": "video.deleted", "deleted": True})

    async def models(self, request: web.Request) -> web.Response:
        if (refused := self.gate(request, "models")) is not None:
            return refused
        created = int(time.time())
        model = {"id": SERVED, "object": "model", "created": created, "owned_by": "vllm-omni"}
        return web.json_response({"object": "list", "data": [model]})


NOT_READY = "Video generation handler not initialized."


def _wxh(value: str) -> bool:
    width, sep, height = value.partition("x")
    return bool(sep) and width.isdigit() and height.isdigit()
