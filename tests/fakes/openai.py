"""A fake OpenAI Videos API (shared/spec/providers/openai.md), with its CDN on a second port.

It checks what api.openai.com checks: the Bearer key, field types (`seconds` is a string), the
model's sizes, the image part's type and its pixel size (PNG) against `size`, and answers with
the `{"error": {message, type, param, code}}` envelope of the page. Videos move queued ->
in_progress -> completed over `polls_to_finish` retrieves; prompt markers choose the outcome.

Knobs:
    content_mode    "redirect": /content answers 302 to a signed URL on the CDN, which listens on
                    another port (another origin, so the relay must drop the key); "stream": the
                    bytes come from /content itself, with Range
    poll_after_ms   the `openai-poll-after-ms` header on retrieve (None: not sent)
    verified        False: create answers 403 "organization must be verified"
    echo_key        the 401 message repeats the key it got (a careless compatible server)
    fail_next(route, status, body, headers)   the next call of a route gets this answer instead;
                    rate_limit_next / server_error_next / auth_error_next / quota_next wrap it
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, replace
from email import policy
from email.parser import BytesParser
from typing import Any, ClassVar

from aiohttp import web
from aiohttp.test_utils import TestServer

from relay.providers.demo import ASSETS
from tests.fakes.base import VIDEO, FakeUpstream, outcome

THUMBNAIL = (ASSETS / "thumbnail.webp").read_bytes()
SPRITESHEET = (ASSETS / "spritesheet.jpg").read_bytes()
VARIANT_FILES = {
    "video": ("mp4", VIDEO),
    "thumbnail": ("webp", THUMBNAIL),
    "spritesheet": ("jpg", SPRITESHEET),
}
MEDIA_TYPES = {"mp4": "video/mp4", "webp": "image/webp", "jpg": "image/jpeg"}

SIZES = ("720x1280", "1280x720")
PRO_SIZES = (*SIZES, "1024x1792", "1792x1024", "1080x1920", "1920x1080")
MODELS = {
    "sora-2": SIZES,
    "sora-2-2025-10-06": SIZES,
    "sora-2-2025-12-08": SIZES,
    "sora-2-pro": PRO_SIZES,
    "sora-2-pro-2025-10-06": PRO_SIZES,
}
SECONDS = ("4", "8", "12", "16", "20")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
ROUTES = ("create", "retrieve", "content", "remix", "delete", "list")


def openai_error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


@dataclass
class FormFile:
    filename: str
    content_type: str
    data: bytes


def parse_form(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, FormFile]]:
    """A multipart body as {name: str, or a list for repeated names} and its file parts."""
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, Any] = {}
    files: dict[str, FormFile] = {}
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        filename = part.get_filename()
        if filename is not None:
            files[name] = FormFile(filename, part.get_content_type(), payload)
        elif name in fields:
            previous = fields[name]
            fields[name] = (
                [*previous, payload.decode()]
                if isinstance(previous, list)
                else [previous, payload.decode()]
            )
        else:
            fields[name] = payload.decode()
    return fields, files


def png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def byte_response(request: web.Request, data: bytes, content_type: str) -> web.Response:
    """The bytes, or the one range asked for."""
    rng = request.headers.get("Range", "")
    headers = {"Accept-Ranges": "bytes"}
    if rng.startswith("bytes="):
        first, _, last = rng[6:].partition("-")
        start = len(data) - int(last) if first == "" else int(first)
        end = len(data) - 1 if first == "" or last == "" else min(int(last), len(data) - 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        return web.Response(
            body=data[start : end + 1], status=206, content_type=content_type, headers=headers
        )
    return web.Response(body=data, content_type=content_type, headers=headers)


class Answers:
    """Queued answers that replace a route's next calls (the tests' failure knobs)."""

    def __init__(self) -> None:
        self.queue: dict[str, list[tuple[int, Any, dict[str, str]]]] = {}

    def push(self, route: str, status: int, body: Any, headers: dict[str, str] | None) -> None:
        self.queue.setdefault(route, []).append((status, body, headers or {}))

    def take(self, route: str) -> web.Response | None:
        waiting = self.queue.get(route)
        if not waiting:
            return None
        status, body, headers = waiting.pop(0)
        if isinstance(body, str):
            return web.Response(text=body, status=status, headers=headers)
        return web.json_response(body, status=status, headers=headers)


class FakeOpenAI(FakeUpstream):
    name: ClassVar[str] = "openai"
    supports_delete: ClassVar[bool] = True  # DELETE /videos/{id}, once completed or failed
    renews_urls: ClassVar[bool] = True  # each /content call redirects to a newly signed URL
    retry_after_header: ClassVar[bool] = True  # "a 429 may include Retry-After"
    api_key = "sk-proj-fake-openai-0123456789abcdef"

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key or self.api_key
        self.videos: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.outcomes: dict[str, str] = {}
        self.created: list[dict[str, Any]] = []  # each create's fields, as the fake read them
        self.answers = Answers()
        self.content_mode = "redirect"
        self.poll_after_ms: int | None = 10
        self.verified = True
        self.echo_key = False
        self.cdn_server: TestServer | None = None

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/videos", self.create)
        router.add_get("/v1/videos", self.list_videos)
        router.add_get("/v1/videos/{video_id}", self.retrieve)
        router.add_delete("/v1/videos/{video_id}", self.delete)
        router.add_get("/v1/videos/{video_id}/content", self.content)
        router.add_post("/v1/videos/{video_id}/remix", self.remix)

    def channel(self, base_url: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": "openai",
            "provider": "openai",
            "base_url": base_url + "/v1",
            "api_key": self.api_key,
            "models": ["sora-2", "sora-2-2025-12-08", "sora-2-pro"],
            "model_map": {"sora-2": "sora-2-2025-12-08"},
            **extra,
        }

    # --- knobs ------------------------------------------------------------------------

    def fail_next(
        self, route: str, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        assert route in ROUTES, route
        self.answers.push(route, status, body, headers)

    def rate_limit_next(self, route: str, retry_after: str | None = None) -> None:
        body = {
            "error": {
                "message": "Rate limit reached.",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        }
        self.fail_next(route, 429, body, {"Retry-After": retry_after} if retry_after else None)

    def quota_next(self, route: str) -> None:
        body = {
            "error": {
                "message": "You exceeded your current quota.",
                "type": "insufficient_quota",
                "param": None,
                "code": "insufficient_quota",
            }
        }
        self.fail_next(route, 429, body)

    def server_error_next(self, route: str, status: int = 500) -> None:
        body = {
            "error": {
                "message": "The server had an error while processing your request.",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
        self.fail_next(route, status, body)

    def auth_error_next(self, route: str) -> None:
        body = {
            "error": {
                "message": "Incorrect API key provided.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
        self.fail_next(route, 401, body)

    # --- the per-method contract hooks ---------------------------------------------------

    def contract_error(self, op: str, kind: str, retry_after: int | None = None) -> None:
        route = {"submit": "create", "poll": "retrieve"}[op]
        if kind == "auth":
            self.auth_error_next(route)
        elif kind == "rate_limit":
            self.rate_limit_next(route, None if retry_after is None else str(retry_after))
        else:
            raise ValueError(f"no contract error {kind!r}")

    def forget_tasks(self) -> None:
        self.videos.clear()  # retrieve answers 404 "video not found"

    # --- running: the CDN listens on its own port ------------------------------------------

    async def start(self) -> str:
        url = await super().start()
        cdn = web.Application()
        cdn.router.add_get("/cdn/{name}", self._serve_cdn)
        self.cdn_server = TestServer(cdn, host="127.0.0.1")
        await self.cdn_server.start_server()
        return url

    async def close(self) -> None:
        if self.cdn_server is not None:
            await self.cdn_server.close()
        await super().close()

    def cdn_url(self, name: str = "video.mp4", query: str = "") -> str:
        if self.cdn_server is None:
            return super().cdn_url(name, query)
        relative = f"/cdn/{name}" + (f"?{query}" if query else "")
        self.issued.add(relative)  # so expire_urls() reaches the second port's URLs too
        return str(self.cdn_server.make_url("")).rstrip("/") + relative

    async def _serve_cdn(self, request: web.Request) -> web.StreamResponse:
        # the storage host labels each object by its own type
        kind = MEDIA_TYPES.get(request.match_info["name"].rsplit(".", 1)[-1])
        if kind is None or self.cdn.content_type != "video/mp4":
            return await super()._serve_cdn(request)
        saved = self.cdn
        self.cdn = replace(saved, content_type=kind)
        try:
            return await super()._serve_cdn(request)
        finally:
            self.cdn = saved

    # --- the API ------------------------------------------------------------------------

    def gate(self, request: web.Request, route: str) -> web.Response | None:
        """Queued knob answers first, then the Bearer key."""
        queued = self.answers.take(route)
        if queued is not None:
            return queued
        given = request.headers.get("Authorization", "")
        if given != f"Bearer {self.api_key}":
            message = "Incorrect API key provided."
            if self.echo_key:
                message = f"Incorrect API key provided: {given.removeprefix('Bearer ')}."
            return openai_error(401, message, code="invalid_api_key")
        return None

    async def create(self, request: web.Request) -> web.Response:
        if (refused := self.gate(request, "create")) is not None:
            return refused
        if not self.verified:
            return openai_error(403, "organization must be verified to use this model")
        fields, files, problem = await self._read(request)
        if problem is not None:
            return problem
        problem = self._validate(fields, files)
        if problem is not None:
            return problem
        prompt = fields["prompt"]
        if outcome(prompt) == "reject":
            return openai_error(
                400, "the prompt was rejected by moderation", code="moderation_blocked"
            )
        self.created.append(
            {"fields": fields, "files": files, "content_type": request.content_type}
        )
        video = self._new_video(
            prompt,
            fields.get("model", "sora-2"),
            fields.get("seconds", "4"),
            fields.get("size", "720x1280"),
        )
        return web.json_response(video)

    async def _read(
        self, request: web.Request
    ) -> tuple[dict[str, Any], dict[str, FormFile], web.Response | None]:
        raw = await request.read()
        if request.content_type == "application/json":
            try:
                body = json.loads(raw)
            except ValueError:
                return (
                    {},
                    {},
                    openai_error(400, "We could not parse the JSON body of your request."),
                )
            if not isinstance(body, dict):
                return {}, {}, openai_error(400, "The body must be a JSON object.")
            return body, {}, None
        if request.content_type == "multipart/form-data":
            fields, files = parse_form(request.headers["Content-Type"], raw)
            if isinstance(fields.get("input_reference"), str):
                return (
                    {},
                    {},
                    openai_error(
                        400,
                        "Invalid type for 'input_reference': expected a file, but got a string "
                        "instead.",
                        param="input_reference",
                        code="invalid_type",
                    ),
                )
            reference = {k[16:-1]: v for k, v in fields.items() if k.startswith("input_reference[")}
            if reference:
                fields["input_reference"] = reference
            characters = fields.pop("characters[][id]", None)
            if characters is not None:
                ids = characters if isinstance(characters, list) else [characters]
                fields["characters"] = [{"id": i} for i in ids]
            return fields, files, None
        return (
            {},
            {},
            openai_error(
                400, "Unsupported content type: use application/json or multipart/form-data."
            ),
        )

    def _validate(self, fields: dict[str, Any], files: dict[str, FormFile]) -> web.Response | None:
        prompt = fields.get("prompt")
        if prompt is None:
            return openai_error(
                400,
                "Missing required parameter: 'prompt'.",
                param="prompt",
                code="missing_required_parameter",
            )
        if not isinstance(prompt, str) or not 1 <= len(prompt) <= 32000:
            return openai_error(
                400,
                "Invalid 'prompt': expected a string of 1 to 32000 characters.",
                param="prompt",
                code="invalid_value",
            )
        model = fields.get("model", "sora-2")
        if model not in MODELS:
            return openai_error(
                404,
                f"The model '{model}' does not exist or you do not have access to it.",
                code="model_not_found",
            )
        seconds = fields.get("seconds", "4")
        if not isinstance(seconds, str):
            return openai_error(
                400,
                "Invalid type for 'seconds': expected one of '4', '8', "
                "'12', '16', '20', but got an integer instead.",
                param="seconds",
                code="invalid_type",
            )
        if seconds not in SECONDS:
            return openai_error(
                400,
                f"Invalid value: '{seconds}'. Supported values are: "
                "'4', '8', '12', '16', and '20'.",
                param="seconds",
                code="invalid_value",
            )
        size = fields.get("size", "720x1280")
        if size not in MODELS[model]:
            return openai_error(
                400,
                f"Invalid value: '{size}'. Supported values are: "
                + ", ".join(f"'{s}'" for s in MODELS[model])
                + ".",
                param="size",
                code="invalid_value",
            )
        characters = fields.get("characters", [])
        if not isinstance(characters, list) or len(characters) > 2:
            return openai_error(
                400, "At most 2 characters may be given.", param="characters", code="invalid_value"
            )
        image = files.get("input_reference")
        if image is not None:
            if image.content_type not in IMAGE_TYPES:
                return openai_error(
                    400,
                    f"Invalid file 'input_reference': unsupported mimetype "
                    f"('{image.content_type}'). Supported file formats are 'image/jpeg', "
                    "'image/png', and 'image/webp'.",
                    param="input_reference",
                    code="unsupported_file",
                )
            pixels = png_size(image.data)
            if pixels is not None and f"{pixels[0]}x{pixels[1]}" != size:
                return openai_error(400, "Inpaint image must match the requested width and height")
        reference = fields.get("input_reference")
        if reference is not None and not (
            isinstance(reference, dict) and ("image_url" in reference or "file_id" in reference)
        ):
            return openai_error(
                400,
                "Invalid type for 'input_reference': expected an object with image_url or file_id.",
                param="input_reference",
                code="invalid_type",
            )
        return None

    def _new_video(
        self, prompt: str, model: str, seconds: str, size: str, remixed_from: str | None = None
    ) -> dict[str, Any]:
        video_id = "video_" + secrets.token_hex(24)
        video = {
            "id": video_id,
            "object": "video",
            "created_at": int(time.time()),
            "status": "queued",
            "model": model,
            "progress": 0,
            "seconds": seconds,
            "size": size,
            "prompt": prompt,
            "completed_at": None,
            "expires_at": None,
            "remixed_from_video_id": remixed_from,
            "error": None,
        }
        self.videos[video_id] = video
        self.polls[video_id] = 0
        self.outcomes[video_id] = outcome(prompt)
        return dict(video)

    def _advance(self, video: dict[str, Any]) -> None:
        if video["status"] in ("completed", "failed"):
            return
        polls = self.polls[video["id"]] = self.polls[video["id"]] + 1
        if polls < self.polls_to_finish:
            video.update(status="in_progress", progress=int(100 * polls / self.polls_to_finish))
            return
        now = int(time.time())
        result = self.outcomes[video["id"]]
        if result == "fail":
            video.update(
                status="failed",
                error={"code": "internal_error", "message": "video generation failed"},
            )
        elif result == "moderation":
            video.update(
                status="failed",
                progress=0,
                error={
                    "code": "moderation_blocked",
                    "message": "the request was blocked by content moderation",
                },
            )
        else:
            video.update(status="completed", progress=100, completed_at=now, expires_at=now + 3600)
            for ext, data in VARIANT_FILES.values():
                self.files[f"{video['id']}.{ext}"] = data

    async def retrieve(self, request: web.Request) -> web.Response:
        if (refused := self.gate(request, "retrieve")) is not None:
            return refused
        video = self.videos.get(request.match_info["video_id"])
        if video is None:
            return openai_error(404, "video not found")
        self._advance(video)
        headers = {}
        if self.poll_after_ms is not None and video["status"] not in ("completed", "failed"):
            headers["openai-poll-after-ms"] = str(self.poll_after_ms)
        return web.json_response(video, headers=headers)

    async def list_videos(self, request: web.Request) -> web.Response:
        if (refused := self.gate(request, "list")) is not None:
            return refused
        data = sorted(self.videos.values(), key=lambda v: v["created_at"], reverse=True)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": False,
            }
        )

    async def delete(self, request: web.Request) -> web.Response:
        if (refused := self.gate(request, "delete")) is not None:
            return refused
        video_id = request.match_info["video_id"]
        video = self.videos.get(video_id)
        if video is None:
            return openai_error(404, "video not found")
        if video["status"] not in ("completed", "failed"):
            return openai_error(400, "Only completed or failed videos can be deleted.")
        del self.videos[video_id]
        return web.json_response({"id": video_id, "object": "video.deleted", "deleted": True})

    async def content(self, request: web.Request) -> web.StreamResponse:
        if (refused := self.gate(request, "content")) is not None:
            return refused
        video = self.videos.get(request.match_info["video_id"])
        if video is None:
            return openai_error(404, "video not found")
        variant = request.query.get("variant", "video")
        if variant not in VARIANT_FILES:
            return openai_error(
                400, f"Invalid value: '{variant}'.", param="variant", code="invalid_value"
            )
        if video["status"] != "completed":
            return openai_error(404, "Video is not ready yet.")
        ext, data = VARIANT_FILES[variant]
        name = f"{video['id']}.{ext}"
        if self.content_mode == "redirect":
            signature = secrets.token_urlsafe(16)
            raise web.HTTPFound(self.cdn_url(name, f"se={video['expires_at']}&sig={signature}"))
        return byte_response(request, data, MEDIA_TYPES[ext])

    async def remix(self, request: web.Request) -> web.Response:
        if (refused := self.gate(request, "remix")) is not None:
            return refused
        source = self.videos.get(request.match_info["video_id"])
        if source is None:
            return openai_error(404, "video not found")
        fields, _, problem = await self._read(request)
        if problem is not None:
            return problem
        prompt = fields.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return openai_error(
                400,
                "Missing required parameter: 'prompt'.",
                param="prompt",
                code="missing_required_parameter",
            )
        if source["status"] != "completed":
            return openai_error(400, "Only completed videos can be remixed.")
        if outcome(prompt) == "reject":
            return openai_error(
                400, "the prompt was rejected by moderation", code="moderation_blocked"
            )
        video = self._new_video(
            prompt, source["model"], source["seconds"], source["size"], remixed_from=source["id"]
        )
        return web.json_response(video)
