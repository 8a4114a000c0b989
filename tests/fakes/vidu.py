"""A fake Vidu enterprise API (spec/providers/vidu.md), faithful to the page.

`Authorization: Token <key>`; four submit paths, each with the page's model list and field rules;
one query endpoint; cancel. Error bodies are `{code, reason, message, metadata: {trace_id}}`
(with `string_codes` the `code` is the reason string, the page's unconfirmed variant; the page's
`CreditInsufficient` body always has it so). The page shows no Retry-After on a 429. Results
sit on the CDN under signed URLs whose signature holds `~` and `;`: a URL that arrives re-encoded
gets the CDN's 403, as a real signed URL would.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from aiohttp import web

from tests.fakes.base import THUMBNAIL_JPEG, VIDEO, FakeUpstream, outcome

PATHS = ("text2video", "img2video", "start-end2video", "reference2video")
FRAME_MODELS = frozenset(
    {"viduq2-pro-fast", "viduq2-pro", "viduq2-turbo", "viduq1", "viduq1-classic", "vidu2.0"}
)
MODELS: dict[str, frozenset[str]] = {
    "text2video": frozenset({"viduq3-turbo", "viduq3-pro", "viduq2", "viduq1"}),
    "img2video": FRAME_MODELS,
    "start-end2video": FRAME_MODELS,
    "reference2video": frozenset({"viduq2", "viduq1", "vidu2.0"}),
}
IMAGE_COUNTS = {"img2video": (1, 1), "start-end2video": (2, 2), "reference2video": (1, 7)}
DATA_URL = re.compile(r"^data:image/(png|jpeg|jpg|webp);base64,(.+)$", re.DOTALL)
ENUMS = {
    "movement_amplitude": ("auto", "small", "medium", "large"),
    "style": ("general", "anime"),
}
BOOLS = ("bgm", "audio", "off_peak", "watermark")
STRINGS = ("payload", "meta_data", "callback_url", "wm_url")


def _durations(model: str, path: str) -> range | tuple[int, ...]:
    if model.startswith("viduq3"):
        return range(1, 17)
    if model.startswith("viduq2"):
        return range(1, 9) if path == "start-end2video" else range(1, 11)
    if model.startswith("viduq1"):
        return (5,)
    return (4, 8)  # vidu2.0


def _resolutions(model: str, duration: int) -> tuple[str, ...]:
    if model == "viduq2-pro-fast":
        return ("720p", "1080p")
    if model.startswith(("viduq2", "viduq3")):
        return ("540p", "720p", "1080p")
    if model.startswith("viduq1"):
        return ("1080p",)
    return ("720p",) if duration == 8 else ("360p", "720p", "1080p")


def _ratios(model: str) -> tuple[str, ...]:
    if model.startswith(("viduq2", "viduq3")):
        return ("16:9", "9:16", "1:1", "3:4", "4:3")
    return ("16:9", "9:16", "1:1")


class NativeError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


@dataclass
class Task:
    id: str
    path: str
    body: dict[str, Any]
    outcome: str
    creation_id: str
    polls: int = 0
    cancelled: bool = False


@dataclass
class Scripted:
    status: int
    reason: str
    message: str
    retry_after: str | None = None


class ViduFake(FakeUpstream):
    name: ClassVar[str] = "vidu"
    supports_delete: ClassVar[bool] = False  # a cancel endpoint, but no delete
    supports_cancel: ClassVar[bool] = True
    renews_urls: ClassVar[bool] = True  # each query signs afresh (unconfirmed on the page)
    retry_after_header: ClassVar[bool] = False  # the page shows none

    def __init__(self, api_key: str = "vidu-test-key-0123456789") -> None:
        self.api_key = api_key
        self.tasks: dict[str, Task] = {}
        self._ids = itertools.count(809387572068364288)
        # page's unconfirmed alternatives and test knobs
        self.string_codes = False  # error bodies carry `code` as the reason string
        self.report_progress = True  # `progress` is optional in a processing answer
        self.result_url_field = False  # a top-level `result_url` beside creations[]
        self.submit_failed_with: str | None = None  # next submit: 200 with state failed
        self.next_submit: list[Scripted] = []
        self.next_poll: list[Scripted] = []
        self.signatures: dict[str, set[str]] = {}
        super().__init__()
        self.app.on_response_prepare.append(self._cdn_type)

    def routes(self, router: web.UrlDispatcher) -> None:
        for path in PATHS:
            router.add_post(f"/ent/v2/{path}", self._submit)
        router.add_get("/ent/v2/tasks/{id}/creations", self._query)
        router.add_post("/ent/v2/tasks/{id}/cancel", self._cancel)

    def channel(self, base_url: str) -> dict[str, Any]:
        return {
            "name": "vidu",
            "provider": "vidu",
            "base_url": base_url,
            "api_key": self.api_key,
            "models": ["sora-2", "viduq2", "viduq2-pro", "viduq3-pro", "viduq1", "vidu2.0"],
            # Vidu runs text and image jobs on different models: a table by job shape (frames
            # fall back to image; reference2video takes none of the image models)
            "model_map": {
                "sora-2": {"text": "viduq2", "image": "viduq2-pro", "reference": "viduq2"}
            },
        }

    # --- knobs ------------------------------------------------------------------------

    def fail_next_submit(
        self, status: int, reason: str, message: str, retry_after: str | None = None
    ) -> None:
        self.next_submit.append(Scripted(status, reason, message, retry_after))

    def fail_next_poll(
        self, status: int, reason: str, message: str, retry_after: str | None = None
    ) -> None:
        self.next_poll.append(Scripted(status, reason, message, retry_after))

    def contract_error(self, op: str, kind: str, retry_after: int | None = None) -> None:
        """The page's 401 and 429 bodies; the page shows no Retry-After, so none is sent."""
        queue = {"submit": self.next_submit, "poll": self.next_poll}[op]
        if kind == "auth":
            queue.append(Scripted(401, "Unauthorized", "unauthorized"))
        elif kind == "rate_limit":
            queue.append(Scripted(429, "TooManyRequests", "too many requests"))
        else:
            raise ValueError(f"no contract error {kind!r}")

    def forget_tasks(self) -> None:
        """Past the 7-day window every query answers 404 TaskNotFound."""
        self.tasks.clear()

    def expire_urls(self) -> None:
        """Every URL handed out so far stops working (the CDN's 403), as after 24 h."""
        self.signatures.clear()

    def creates(self) -> list[Any]:
        return [r for r in self.requests if r.method == "POST" and r.path[8:] in PATHS]

    # --- native error answers -----------------------------------------------------------

    def error(
        self, status: int, reason: str, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        body = {
            "code": reason if self.string_codes or reason == "CreditInsufficient" else status,
            "reason": reason,
            "message": message,
            "metadata": {"trace_id": secrets.token_hex(6)},
        }
        return web.json_response(body, status=status, headers=headers)

    def _scripted(self, queue: list[Scripted]) -> web.Response | None:
        if not queue:
            return None
        s = queue.pop(0)
        headers = {"Retry-After": s.retry_after} if s.retry_after else None
        return self.error(s.status, s.reason, s.message, headers)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Token {self.api_key}"

    # --- handlers -------------------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self.error(401, "Unauthorized", "unauthorized")
        scripted = self._scripted(self.next_submit)
        if scripted is not None:
            return scripted
        path = request.path.rsplit("/", 1)[1]
        try:
            body = await request.json()
        except ValueError:
            return self.error(400, "BadRequest", "request body is not valid JSON")
        try:
            self._validate(path, body)
        except NativeError as exc:
            return self.error(exc.status, exc.reason, exc.message)
        result = outcome(body.get("prompt", ""))
        if result == "reject":
            return self.error(400, "TaskPromptPolicyViolation", "prompt rejected")
        task = Task(str(next(self._ids)), path, body, result, str(next(self._ids)))
        echo = {
            "task_id": task.id,
            "type": path,
            "state": "created",
            "model": body["model"],
            "style": body.get("style", "general"),
            "prompt": body.get("prompt", ""),
            "images": body.get("images", []),
            "duration": body.get("duration", 5),
            "seed": body.get("seed") or secrets.randbelow(2**31),
            "aspect_ratio": body.get("aspect_ratio", "16:9"),
            "resolution": body.get("resolution", "720p"),
            "bgm": body.get("bgm", False),
            "movement_amplitude": body.get("movement_amplitude", "auto"),
            "payload": body.get("payload", ""),
            "off_peak": body.get("off_peak", False),
            "credits": 10,
            "watermark": body.get("watermark", False),
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        if self.submit_failed_with:
            echo.update(state="failed", err_code=self.submit_failed_with, credits=0)
            self.submit_failed_with = None
        else:
            self.tasks[task.id] = task
        return web.json_response(echo)

    def _validate(self, path: str, body: Any) -> None:
        if not isinstance(body, dict):
            raise NativeError(400, "BadRequest", "request body must be an object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise NativeError(400, "FieldLacking", "model is required")
        if model not in MODELS[path]:
            raise NativeError(400, "ModelUnavailable", f"model {model} is not available")
        prompt = body.get("prompt")
        if path in ("text2video", "reference2video") and not prompt:
            raise NativeError(400, "FieldLacking", "prompt is required")
        if prompt is not None and (not isinstance(prompt, str) or len(prompt) > 2000):
            raise NativeError(400, "FieldInvalid", "prompt is invalid")
        self._validate_images(path, body)
        duration = body.get("duration", 4 if model == "vidu2.0" else 5)
        if type(duration) is not int or duration not in _durations(model, path):
            raise NativeError(400, "FieldInvalid", "duration is invalid")
        if "resolution" in body and body["resolution"] not in _resolutions(model, duration):
            raise NativeError(400, "FieldInvalid", "resolution is invalid")
        if "aspect_ratio" in body:
            if path in ("img2video", "start-end2video"):
                raise NativeError(400, "FieldUnwanted", "aspect_ratio is unwanted")
            if body["aspect_ratio"] not in _ratios(model):
                raise NativeError(400, "FieldInvalid", "aspect_ratio is invalid")
        if "seed" in body and type(body["seed"]) is not int:
            raise NativeError(400, "FieldInvalid", "seed is invalid")
        for name, allowed in ENUMS.items():
            if name in body and body[name] not in allowed:
                raise NativeError(400, "FieldInvalid", f"{name} is invalid")
        for name in BOOLS:
            if name in body and not isinstance(body[name], bool):
                raise NativeError(400, "FieldInvalid", f"{name} is invalid")
        for name in STRINGS:
            if name in body and not isinstance(body[name], str):
                raise NativeError(400, "FieldInvalid", f"{name} is invalid")
        if body.get("audio") and body.get("off_peak"):
            raise NativeError(400, "FieldInvalid", "off_peak is not allowed with audio")

    def _validate_images(self, path: str, body: dict[str, Any]) -> None:
        images = body.get("images")
        if path == "text2video":
            if images:
                raise NativeError(400, "FieldUnwanted", "images is unwanted")
            return
        if images is None and path == "reference2video" and body.get("subjects"):
            return
        if not isinstance(images, list):
            raise NativeError(400, "FieldLacking", "images is required")
        low, high = IMAGE_COUNTS[path]
        if not low <= len(images) <= high:
            raise NativeError(400, "FieldItemCountOutOfRange", "images count is out of range")
        for image in images:
            if not isinstance(image, str):
                raise NativeError(400, "ImageFormatInvalid", "image is invalid")
            if image.startswith(("https://", "http://")):
                continue
            match = DATA_URL.match(image)
            if match is None:  # raw base64 without its data: prefix lands here
                raise NativeError(400, "ImageFormatInvalid", "image format is invalid")
            try:
                base64.b64decode(match.group(2), validate=True)
            except (binascii.Error, ValueError):
                raise NativeError(400, "ImageFormatInvalid", "image is not base64") from None

    async def _query(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self.error(401, "Unauthorized", "unauthorized")
        scripted = self._scripted(self.next_poll)
        if scripted is not None:
            return scripted
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return self.error(404, "TaskNotFound", "task not found")
        task.polls += 1
        answer: dict[str, Any] = {
            "id": task.id,
            "state": "processing",
            "err_code": "",
            "credits": 10,
            "payload": task.body.get("payload", ""),
            "bgm": task.body.get("bgm", False),
            "off_peak": task.body.get("off_peak", False),
            "creations": [],
        }
        if task.cancelled:
            answer.update(state="failed", err_code="UserCancelled", credits=0)
        elif task.polls < self.polls_to_finish:
            if task.polls == 1 and self.polls_to_finish > 2:
                answer["state"] = "queueing"
            elif self.report_progress:
                answer["progress"] = int(100 * task.polls / self.polls_to_finish)
        elif task.outcome in ("fail", "moderation"):
            code = "InternalServiceFailure" if task.outcome == "fail" else "CreationPolicyViolation"
            answer.update(state="failed", err_code=code, credits=0)
            for key in ("bgm", "off_peak"):
                answer.pop(key)
        else:
            answer.update(state="success", creations=[self._creation(task)])
            if self.result_url_field:
                answer["result_url"] = answer["creations"][0]["url"]
        return web.json_response(answer)

    async def _cancel(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self.error(401, "Unauthorized", "unauthorized")
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return self.error(404, "TaskNotFound", "task not found")
        task.cancelled = True
        return web.json_response({})

    # --- results on the CDN ---------------------------------------------------------------

    def _creation(self, task: Task) -> dict[str, Any]:
        video, cover = f"{task.creation_id}.mp4", f"{task.creation_id}.jpeg"
        self.files[video], self.files[cover] = VIDEO, THUMBNAIL_JPEG
        return {
            "id": task.creation_id,
            "url": self._signed(video, "&Key-Pair-Id=K2X"),
            "cover_url": self._signed(cover),
            "watermarked_url": "",
        }

    def _signed(self, name: str, extra: str = "") -> str:
        # CloudFront-style signatures carry characters a careless client re-encodes
        signature = f"{secrets.token_hex(4)}~{secrets.token_hex(4)};{secrets.token_hex(2)}"
        self.signatures.setdefault(name, set()).add(signature)
        expires = int(time.time()) + 24 * 3600
        return self.cdn_url(name, f"Expires={expires}{extra}&Signature={signature}")

    async def _serve_cdn(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name != "video.mp4":  # the base class's unsigned default file
            raw_query = request.raw_path.partition("?")[2]
            given = [p[10:] for p in raw_query.split("&") if p.startswith("Signature=")]
            if not any(sig in self.signatures.get(name, ()) for sig in given):
                self.cdn_stats.requests += 1
                return web.Response(
                    status=403,
                    text="<Error><Code>AccessDenied</Code><Message>Access denied</Message></Error>",
                    content_type="text/xml",
                )
        return await super()._serve_cdn(request)

    async def _cdn_type(self, request: web.Request, response: web.StreamResponse) -> None:
        # the base CDN serves one type for every file; Vidu's covers are JPEG. A test that set
        # its own type through the knob keeps it.
        if request.path.endswith(".jpeg") and response.content_type == "video/mp4":
            response.content_type = "image/jpeg"
