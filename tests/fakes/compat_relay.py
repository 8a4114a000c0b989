"""A fake new-api-style gateway in front of video providers (spec/providers/compat-relay.md).

What it does as such gateways do: ids are `task_…`; the first retrieve after create says
`unknown` (the gateway has not polled its backend yet) with `completed_at` already set; results
are the backing provider's signed URL in `metadata.url`; `/content` proxies the bytes and answers
400 until the job is done; task routes answer errors as `{"code", "message", "data"}`, content
routes as `{"error": {"message", "type"}}`; unknown ids get 400 `task_not_exist`; there is no list
and no DELETE (aiohttp answers 405); remix works only for jobs on the OpenAI (sora) backend.

Knobs (the variants other gateways produce):
    auth_envelope   "openai" or "task": the envelope of the 401 for a bad token
    id_shape        "both" (`id` and `task_id`) or "task_id" (no `id`)
    words           relay status -> the gateway's status word (e.g. SYNONYMS)
    result_shape    "metadata" (metadata.url) or "video_url" (+ thumbnail_url and expires_at)
    unknown_polls   how many retrieves of a new task answer status "unknown"
    missing_polls   how many retrieves of a new task answer 400 task_not_exist (not stored yet)
    progress_text   progress as "30%" instead of 30
    content_route   False: /content does not exist (the router's 404 text)
    videos_route    False: only the older GET /v1/video/generations/{id} route exists
    content_fails   /content answers 502 "Failed to fetch video content"
    fail_next(route, status, body, headers) and the *_next helpers, as in the openai fake
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any, ClassVar

from aiohttp import web

from tests.fakes.base import THUMBNAIL_JPEG, VIDEO, FakeUpstream, outcome
from tests.fakes.openai import Answers, FormFile, byte_response, parse_form

SORA_SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
SYNONYMS = {
    "queued": "pending",
    "in_progress": "processing",
    "completed": "succeeded",
    "failed": "error",
}
OLD_WORDS = {
    "unknown": "UNKNOWN",
    "queued": "NOT_START",
    "in_progress": "IN_PROGRESS",
    "completed": "SUCCESS",
    "failed": "FAILURE",
}
ROUTES = ("create", "retrieve", "generations", "content", "remix")
ROUTER_404 = "404 page not found"


def task_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "data": None}, status=status)


def content_error(status: int, message: str, kind: str = "invalid_request_error") -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind}}, status=status)


class FakeCompatRelay(FakeUpstream):
    name: ClassVar[str] = "compat-relay"
    supports_delete: ClassVar[bool] = False  # no DELETE route: the relay deletes locally
    renews_urls: ClassVar[bool] = True  # each retrieve signs metadata.url afresh
    retry_after_header: ClassVar[bool] = False  # the page's 429 carries no Retry-After
    token = "sk-fake-gateway-0123456789abcdef"

    def __init__(self, token: str | None = None) -> None:
        super().__init__()
        self.token = token or self.token
        self.tasks: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        self.answers = Answers()
        self.auth_envelope = "openai"
        self.id_shape = "both"
        self.words: dict[str, str] = {}
        self.result_shape = "metadata"
        self.unknown_polls = 1
        self.missing_polls = 0
        self.progress_text = False
        self.content_route = True
        self.videos_route = True
        self.content_fails = False

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/videos", self.create)
        router.add_get("/v1/videos/{task_id}", self.retrieve)
        router.add_get("/v1/videos/{task_id}/content", self.content)
        router.add_post("/v1/videos/{task_id}/remix", self.remix)
        router.add_get("/v1/video/generations/{task_id}", self.generations)

    def channel(self, base_url: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": "gateway",
            "provider": "compat-relay",
            "base_url": base_url + "/v1",
            "api_key": self.token,
            "models": ["sora-2", "wan2.2-t2v-plus"],
            "model_map": {"sora-2": "wan2.2-t2v-plus"},
            **extra,
        }

    # --- knobs ------------------------------------------------------------------------

    def fail_next(
        self, route: str, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        assert route in ROUTES, route
        self.answers.push(route, status, body, headers)

    def rate_limit_next(self, route: str, retry_after: str | None = None) -> None:
        message = "当前分组上游负载已饱和，请稍后再试"  # noqa: RUF001 (the gateway's own text)
        body = {"code": "rate_limit", "message": message, "data": None}
        self.fail_next(route, 429, body, {"Retry-After": retry_after} if retry_after else None)

    def quota_next(self, route: str) -> None:
        body = {
            "code": "insufficient_user_quota",
            "message": "用户额度不足, 剩余额度: $0.01",
            "data": None,
        }
        self.fail_next(route, 403, body)

    def server_error_next(self, route: str, status: int = 500) -> None:
        body = {
            "code": "fail_to_fetch_task",
            "message": '{"message":"upstream overloaded"}',
            "data": None,
        }
        self.fail_next(route, status, body)

    def auth_error_next(self, route: str) -> None:
        self.fail_next(route, 401, self._auth_body())

    def _auth_body(self) -> dict[str, Any]:
        if self.auth_envelope == "openai":
            return {"error": {"message": "invalid token", "type": "new_api_error"}}
        return {"code": "invalid_token", "message": "invalid token", "data": None}

    # --- the per-method contract hooks ---------------------------------------------------

    def contract_error(self, op: str, kind: str, retry_after: int | None = None) -> None:
        route = {"submit": "create", "poll": "retrieve"}[op]
        if kind == "auth":
            self.auth_error_next(route)
        elif kind == "rate_limit":
            self.rate_limit_next(route)  # the page's 429: the task envelope, no Retry-After
        else:
            raise ValueError(f"no contract error {kind!r}")

    def forget_tasks(self) -> None:
        self.tasks.clear()  # retrieve answers 400 task_not_exist

    # --- shared steps -------------------------------------------------------------------

    def gate(self, request: web.Request, route: str) -> web.Response | None:
        queued = self.answers.take(route)
        if queued is not None:
            return queued
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response(self._auth_body(), status=401)
        return None

    def word(self, status: str) -> str:
        return self.words.get(status, status)

    async def _serve_cdn(self, request: web.Request) -> web.StreamResponse:
        saved = self.cdn.content_type  # the storage host labels each object by its own type
        if request.match_info["name"].endswith(".jpg") and saved == "video/mp4":
            self.cdn.content_type = "image/jpeg"
        try:
            return await super()._serve_cdn(request)
        finally:
            self.cdn.content_type = saved

    # --- create -------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        if (refused := self.gate(request, "create")) is not None:
            return refused
        raw = await request.read()
        files: dict[str, FormFile] = {}
        if request.content_type == "multipart/form-data":
            fields, files = parse_form(request.headers["Content-Type"], raw)
        else:
            try:
                fields = json.loads(raw)
            except ValueError:
                return task_error(400, "invalid_request", "invalid request body")
        if isinstance(fields.get("metadata"), str):
            fields["metadata"] = json.loads(fields["metadata"])
        prompt, model = fields.get("prompt"), fields.get("model")
        if not prompt:
            return task_error(400, "invalid_request", "prompt is required")
        if not model:
            return task_error(400, "invalid_request", "model is required")
        size = fields.get("size", "720x1280")
        if model.startswith("sora-2") and size not in SORA_SIZES:
            return task_error(400, "invalid_request", f"size {size} is not supported")
        if outcome(prompt) == "reject":
            backing = {
                "error": {
                    "code": "InputTextSensitiveContentDetected",
                    "message": "Input text may contain sensitive information",
                }
            }
            return task_error(400, "fail_to_fetch_task", json.dumps(backing))
        self.created.append(
            {"fields": fields, "files": files, "content_type": request.content_type}
        )
        task = self._new_task(prompt, model)
        body: dict[str, Any] = {"task_id": task["id"], "status": self.word("queued")}
        if self.id_shape == "both":
            body = {
                "id": task["id"],
                **body,
                "object": "video",
                "model": model,
                "progress": 0,
                "created_at": task["created_at"],
            }
        return web.json_response(body, headers={"X-New-Api-Other-Ratios": '{"seconds": 5}'})

    def _new_task(self, prompt: str, model: str) -> dict[str, Any]:
        task = {
            "id": "task_" + secrets.token_urlsafe(24).replace("-", "a").replace("_", "b"),
            "model": model,
            "prompt": prompt,
            "status": "unknown",
            "progress": 0,
            "created_at": int(time.time()),
            "completed_at": None,
            "polls": 0,
            "missing": self.missing_polls,
            "outcome": outcome(prompt),
            "error": None,
            "backend": "sora" if model.startswith("sora") else "other",
        }
        self.tasks[task["id"]] = task
        return task

    # --- retrieve -----------------------------------------------------------------------

    def _find(self, task_id: str) -> dict[str, Any] | None:
        task = self.tasks.get(task_id)
        if task is not None and task["missing"] > 0:
            task["missing"] -= 1  # not in the gateway's table yet
            return None
        return task

    def _advance(self, task: dict[str, Any]) -> None:
        if task["status"] in ("completed", "failed"):
            return
        task["polls"] += 1
        running = task["polls"] - self.unknown_polls
        if running <= 0:
            return
        if running < self.polls_to_finish:
            task.update(status="in_progress", progress=int(100 * running / self.polls_to_finish))
            return
        task["completed_at"] = int(time.time())
        if task["outcome"] == "fail":
            task.update(
                status="failed",
                progress=100,
                error={"code": "", "message": "task failed: generation error"},
            )
        elif task["outcome"] == "moderation":
            task.update(
                status="failed",
                progress=100,
                error={"code": "1027", "message": "output new_sensitive"},
            )
        else:
            task.update(status="completed", progress=100)
            self.files[f"{task['id']}.mp4"] = VIDEO
            self.files[f"{task['id']}.jpg"] = THUMBNAIL_JPEG

    def _signed(self, name: str, expires: int) -> str:
        return self.cdn_url(
            name, f"Expires={expires}&OSSAccessKeyId=LTAI5t&Signature=" + secrets.token_urlsafe(12)
        )

    def _progress(self, task: dict[str, Any]) -> Any:
        return f"{task['progress']}%" if self.progress_text else task["progress"]

    def _render(self, task: dict[str, Any]) -> dict[str, Any]:
        done = task["status"] == "completed"
        expires = (task["completed_at"] or 0) + 86400
        if self.result_shape == "video_url":
            body: dict[str, Any] = {
                "task_id": task["id"],
                "status": self.word(task["status"]),
                "progress": self._progress(task),
            }
            if done:
                body.update(
                    video_url=self._signed(f"{task['id']}.mp4", expires),
                    thumbnail_url=self.cdn_url(f"{task['id']}.jpg"),
                    expires_at=expires,
                )
        else:
            body = {
                "id": task["id"],
                "object": "video",
                "model": task["model"],
                "status": self.word(task["status"]),
                "progress": self._progress(task),
                "created_at": task["created_at"],
                # filled in before the job is done, as these gateways do
                "completed_at": task["completed_at"] or int(time.time()),
                "metadata": {"url": self._signed(f"{task['id']}.mp4", expires) if done else ""},
            }
            if self.id_shape == "both" and task["status"] == "unknown":
                body["task_id"] = task["id"]
        if task["error"]:
            body["error"] = task["error"]
        return body

    async def retrieve(self, request: web.Request) -> web.Response:
        if not self.videos_route:
            return web.Response(text=ROUTER_404, status=404)
        if (refused := self.gate(request, "retrieve")) is not None:
            return refused
        task = self._find(request.match_info["task_id"])
        if task is None:
            return task_error(400, "task_not_exist", "task_not_exist")
        self._advance(task)
        return web.json_response(self._render(task))

    async def generations(self, request: web.Request) -> web.Response:
        if (refused := self.gate(request, "generations")) is not None:
            return refused
        task = self._find(request.match_info["task_id"])
        if task is None:
            return task_error(400, "task_not_exist", "task_not_exist")
        self._advance(task)
        done = task["status"] == "completed"
        data = {
            "task_id": task["id"],
            "status": OLD_WORDS[task["status"]],
            "progress": f"{task['progress']}%",
            "fail_reason": task["error"]["message"] if task["error"] else "",
            "result_url": self._signed(f"{task['id']}.mp4", int(time.time()) + 86400)
            if done
            else "",
            "submit_time": task["created_at"],
            "finish_time": task["completed_at"] or 0,
        }
        return web.json_response({"code": "success", "message": "", "data": data})

    # --- content and remix ----------------------------------------------------------------

    async def content(self, request: web.Request) -> web.StreamResponse:
        if not self.content_route:
            return web.Response(text=ROUTER_404, status=404)
        if (refused := self.gate(request, "content")) is not None:
            return refused
        task = self.tasks.get(request.match_info["task_id"])
        if task is None:
            return content_error(404, "Task not found")
        if task["status"] != "completed":
            shown = "IN_PROGRESS" if task["status"] != "failed" else "FAILURE"
            return content_error(400, f"Task is not completed yet, current status: {shown}")
        if self.content_fails:
            return content_error(502, "Failed to fetch video content", "server_error")
        return byte_response(request, VIDEO, "video/mp4")  # variant ignored

    async def remix(self, request: web.Request) -> web.Response:
        if (refused := self.gate(request, "remix")) is not None:
            return refused
        source = self.tasks.get(request.match_info["task_id"])
        if source is None:
            return task_error(400, "task_not_exist", "task_not_exist")
        fields = json.loads(await request.read() or b"{}")
        if not fields.get("prompt"):
            return task_error(400, "invalid_request", "prompt is required")
        if source["backend"] != "sora":
            return task_error(400, "invalid_request", "remix is only supported for sora videos")
        if source["status"] != "completed":
            return task_error(400, "invalid_request", "the source video is not completed")
        task = self._new_task(fields["prompt"], source["model"])
        return web.json_response(
            {
                "id": task["id"],
                "task_id": task["id"],
                "object": "video",
                "model": task["model"],
                "status": "queued",
                "progress": 0,
                "created_at": task["created_at"],
                "remixed_from_video_id": source["id"],
            }
        )
