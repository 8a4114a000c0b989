"""A fake Gemini API for Gemini Omni Flash's Interactions API
(shared/spec/providers/gemini-omni.md), faithful to the page.

Routes: `POST /v1beta/interactions` (create; `background: true` answers at once with
`in_progress`), `GET /v1beta/interactions/{id}` (poll), `POST .../{id}/cancel`, `DELETE .../{id}`,
`GET /v1beta/files/{id}` (metadata: PROCESSING, then ACTIVE) and
`GET /v1beta/files/{id}:download?alt=media` (a direct 200 with Range, or a 302 to a second
*storage* host that refuses any request carrying `x-goog-api-key`), all behind `x-goog-api-key`
(`?key=` too, as Google does). A bad key is the front end's 400 API_KEY_INVALID, array-wrapped
or not (`wrap_errors`).

Outcomes by prompt marker: #fail (status `failed`, the reason where `failure` says), #moderation
(`completed` with only a refusal text), #reject (the submit's 400 "The prompt was blocked for
safety reasons."). Knobs for the page's unconfirmed points, each switchable:

    result             "uri" (a Files URI), "inline" (`data`, even though `uri` was asked for)
                       or "unparsed" (completed, no video block, but video tokens)
    uri_shape          "download" (`https://…/files/{id}:download?alt=media`, the default),
                       "file" (`…/files/{id}`) or "name" (`files/{id}`)
    foreign_uri        the URI names another host (the adapter must refuse it)
    failure            where a failure's reason sits: "error", "errors", "step", "finish_reason"
    unknown_interaction  400 "Invalid interaction name" (observed) or 404
    redirect_download  the download 302s to the storage host (else a direct 200)
    processing_reads   file metadata reads that still say PROCESSING
    file_failed        the delivered file ends FAILED
    queued_first       the first poll says `queued`
    wrap_errors        front-end errors come in a one-element array

`fail_next(where, kind)` scripts the next submit / poll / download / file answer from ERRORS.
`ignored` records silently ignored `video_config` keys, as the live API bills a 10 s clip then.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.fakes.base import VIDEO, FakeUpstream, Recorded, outcome

MODELS = {"gemini-omni-1.1-flash": "1.1", "gemini-omni-flash-preview": "preview"}
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")
TASKS = ("text_to_video", "image_to_video", "reference_to_video", "edit", "extend")
REFUSAL = "I can't create that video because it depicts a real person."
_ALPHABET = string.ascii_letters + string.digits
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


def front(code: int, status: str, message: str, details: list[Any] | None = None) -> Any:
    """The Google front end's google.rpc.Status envelope (numeric code)."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return {"error": error}


def native(code: str, message: str) -> Any:
    """The Interactions API's own envelope (string code)."""
    return {"error": {"code": code, "message": message}}


BAD_KEY = front(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
     "domain": "googleapis.com"}])  # fmt: skip


def rate_limited(retry_delay: str = "29s") -> Any:
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
    return front(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", [retry])


# kind -> (HTTP status, body): the page's table of error answers
ERRORS: dict[str, tuple[int, Any]] = {
    "auth": (400, BAD_KEY),
    "blocked": (403, front(403, "PERMISSION_DENIED", "Permission denied: consumer blocked.", [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
         "reason": "API_KEY_SERVICE_BLOCKED", "domain": "googleapis.com"}])),
    "rate_limit": (429, rate_limited()),
    "quota": (429, front(429, "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details.")),
    "too_long": (400, native("invalid_request",
        "Requested video duration 999s 0ns exceeds the maximum allowed 10s 0ns")),
    "too_short": (400, native("invalid_request",
        "Requested video duration 2s 0ns is less than the minimum allowed 3s 0ns")),
    "bad_image": (400, native("invalid_request", "Unable to process input image")),
    "safety": (400, native("invalid_request", "The prompt was blocked for safety reasons.")),
    "bad_request": (400, native("invalid_request", "Unsupported field in response_format.")),
    "unknown_model": (404, native("not_found",
        "Model 'gemini-omni-9.9-flash' not found. Did you mean 'gemini-omni-1.1-flash'?")),
    "internal": (500, native("internal", "An internal error has occurred.")),
    "unavailable": (503, front(503, "UNAVAILABLE", "The model is overloaded.")),
    "gone": (400, native("invalid_request", "Invalid interaction name: v1_doesnotexist")),
    "expired": (404, front(404, "NOT_FOUND", "File not found.")),
}  # fmt: skip


class NativeError(Exception):
    def __init__(self, message: str, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


@dataclass
class Interaction:
    id: str
    model: str
    body: dict[str, Any]
    outcome: str
    file_id: str
    created: str
    polls: int = 0
    cancelled: bool = False
    file_reads: int = 0
    ignored: list[str] = field(default_factory=list)


def _stamp(at: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


class GeminiOmniFake(FakeUpstream):
    name: ClassVar[str] = "gemini-omni"
    supports_delete: ClassVar[bool] = True  # DELETE /v1beta/interactions/{id}
    supports_cancel: ClassVar[bool] = True  # POST .../{id}/cancel, a running interaction only
    renews_urls: ClassVar[bool] = False  # the file URI is fixed; it lives about 48 h
    # the 429 carries its wait as RetryInfo.retryDelay in the body, read as the retry-after
    retry_after_header: ClassVar[bool] = True

    def __init__(self, api_key: str = "AIzaSyFakeOmniKey-0123456789abcdefghij") -> None:
        self.api_key = api_key
        self.interactions: dict[str, Interaction] = {}
        self.result = "uri"
        self.uri_shape = "download"
        self.foreign_uri = False
        self.failure = "error"
        self.unknown_interaction = 400
        self.redirect_download = False
        self.processing_reads = 1
        self.file_failed = False
        self.queued_first = False
        self.wrap_errors = True
        self.ignored: list[str] = []
        self.expired_files: set[str] = set()
        self.scripted: dict[str, list[tuple[int, Any]]] = {
            "submit": [], "poll": [], "download": [], "file": []}  # fmt: skip
        self.storage_requests: list[Recorded] = []
        self.storage_app = web.Application()
        self.storage_app.router.add_get("/omni-files/{name}", self._serve_storage)
        self.storage: TestServer | None = None
        super().__init__()

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1beta/interactions", self._create)
        router.add_get("/v1beta/interactions/{id}", self._poll)
        router.add_delete("/v1beta/interactions/{id}", self._delete)
        router.add_post("/v1beta/interactions/{id}/cancel", self._cancel)
        router.add_get(r"/v1beta/files/{name:[^/:]+}:download", self._download)
        router.add_get(r"/v1beta/files/{name:[^/:]+}", self._file)
        router.add_post("/v1beta/models/{model}:generateContent", self._wrong_api)

    def channel(self, base_url: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": "gemini-omni",
            "provider": "gemini-omni",
            "base_url": base_url,
            "api_key": self.api_key,
            "models": ["sora-2", *MODELS],
            "model_map": {"sora-2": "gemini-omni-1.1-flash"},
            **extra,
        }

    async def start(self) -> str:
        self.storage = TestServer(self.storage_app, host="127.0.0.1")
        await self.storage.start_server()
        return await super().start()

    async def close(self) -> None:
        await super().close()
        if self.storage is not None:
            await self.storage.close()

    # --- knobs and the contract hooks ---------------------------------------------------------

    def fail_next(self, where: str, kind: str, retry_delay: str | None = None) -> None:
        status, body = ERRORS[kind]
        if kind == "rate_limit" and retry_delay is not None:
            body = rate_limited(retry_delay)
        self.scripted[where].append((status, body))

    def expire_files(self) -> None:
        """Downloads and metadata answer 404, as about 48 h after generation."""
        self.expired_files.update(i.file_id for i in self.interactions.values())

    def contract_error(self, op: str, kind: str, retry_after: int | None = None) -> None:
        self.fail_next(op, kind, None if retry_after is None else f"{retry_after}s")

    def forget_tasks(self) -> None:
        self.interactions.clear()

    def creates(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/v1beta/interactions"]

    def storage_keys_seen(self) -> list[str]:
        return [
            f"{k}: {v}"
            for r in self.storage_requests
            for k, v in r.headers.items()
            if k.lower() in ("x-goog-api-key", "authorization") or self.api_key in v
        ]

    # --- auth and errors ----------------------------------------------------------------------

    def _answer(self, status: int, body: Any) -> web.Response:
        wrapped = self.wrap_errors and isinstance(body, dict) and isinstance(
            body.get("error", {}).get("code"), int) and status == 400  # fmt: skip
        return web.json_response([body] if wrapped else body, status=status)

    def _refused(self, request: web.Request, where: str) -> web.Response | None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if key is None:
            if request.headers.get("Authorization"):
                return self._answer(
                    401,
                    front(
                        401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
                    ),
                )
            return self._answer(
                403, front(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers.")
            )
        if key != self.api_key:
            return self._answer(*ERRORS["auth"])
        if self.scripted[where]:
            return self._answer(*self.scripted[where].pop(0))
        return None

    @staticmethod
    def _error(exc: NativeError) -> web.Response:
        return web.json_response(native(exc.code, exc.message), status=exc.status)

    async def _wrong_api(self, request: web.Request) -> web.Response:
        return self._error(NativeError("This model only supports Interactions API."))

    # --- create -------------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        refused = self._refused(request, "submit")
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return self._error(NativeError("Invalid JSON payload received."))
        try:
            model, prompt = self._validate(body)
        except NativeError as exc:
            return self._error(exc)
        result = outcome(prompt)
        if result == "reject":
            return self._error(NativeError("The prompt was blocked for safety reasons."))
        ident = "v1_" + "".join(secrets.choice(_ALPHABET) for _ in range(60))
        interaction = Interaction(ident, model, body, result, secrets.token_hex(6), _stamp())
        video_config = body.get("generation_config", {}).get("video_config", {})
        interaction.ignored = [k for k in video_config if k != "task"]
        self.ignored += interaction.ignored
        self.interactions[ident] = interaction
        answer = {"id": ident, "status": "in_progress", "object": "interaction", "model": model,
                  "created": interaction.created, "updated": interaction.created,
                  "service_tier": "standard"}  # fmt: skip
        return web.json_response(answer)

    def _validate(self, body: Any) -> tuple[str, str]:
        """The page's rules; returns the model and the prompt."""
        if not isinstance(body, dict):
            raise NativeError("Invalid JSON payload received.")
        model = body.get("model")
        if model not in MODELS:
            raise NativeError(
                f"Model '{model}' not found. Did you mean 'gemini-omni-1.1-flash'?",
                404, "not_found",
            )  # fmt: skip
        if body.get("background") is not True:
            raise NativeError("the fake serves background interactions only")
        if "response_modalities" in body and body["response_modalities"] != ["video"]:
            raise NativeError("response_modalities: invalid value")
        previous = body.get("previous_interaction_id")
        if previous is not None and previous not in self.interactions:
            raise NativeError(f"Invalid previous_interaction_id: {previous}")
        prompt = self._input(body.get("input"))
        fmt = body.get("response_format", {})
        for item in fmt if isinstance(fmt, list) else [fmt]:
            self._format(MODELS[model], item)
        task = body.get("generation_config", {}).get("video_config", {}).get("task")
        if task is not None and task not in TASKS:
            raise NativeError(f"Invalid video task: {task}")
        return model, prompt

    def _input(self, given: Any) -> str:
        if isinstance(given, str):
            return given
        if not isinstance(given, list) or not given:
            raise NativeError("input is required")
        if all(isinstance(s, dict) and s.get("type") == "user_input" for s in given):
            given = [b for s in given for b in s.get("content", [])]
        texts = []
        for block in given:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text" and isinstance(block.get("text"), str):
                texts.append(block["text"])
            elif kind == "image":
                if "uri" in block:
                    continue  # a Files API URI
                if block.get("mime_type") not in IMAGE_TYPES:
                    raise NativeError("Unable to process input image")
                try:
                    base64.b64decode(block.get("data") or "", validate=True)
                except (binascii.Error, ValueError):
                    raise NativeError("Unable to process input image") from None
            elif kind == "video":
                uri = block.get("uri")
                if isinstance(uri, str) and uri.startswith("http") and "/files/" not in uri:
                    raise NativeError("HTTP video input is not supported by the model")
            else:
                raise NativeError(f"Invalid content block type: {kind}")
        return " ".join(texts)

    @staticmethod
    def _format(version: str, fmt: Any) -> None:
        if not isinstance(fmt, dict):
            raise NativeError("response_format must be an object")
        if fmt.get("type", "video") != "video":
            raise NativeError("response_format.type must be video")
        if fmt.get("aspect_ratio", "16:9") not in ("16:9", "9:16"):
            raise NativeError("Unsupported aspect ratio; use 16:9 or 9:16")
        resolution = fmt.get("resolution")
        allowed = ("720p",) if version == "preview" else ("360p", "720p", "1080p", "4k")
        if resolution is not None and resolution not in allowed:
            raise NativeError(f"Unsupported resolution: {resolution}")
        if fmt.get("delivery", "inline") not in ("inline", "uri"):
            raise NativeError("delivery must be inline or uri")
        duration = fmt.get("duration", "10s")
        found = _DURATION.match(duration) if isinstance(duration, str) else None
        if found is None:
            raise NativeError(f"Invalid duration: {duration!r}")
        seconds = float(found[1])
        if seconds > 10:
            raise NativeError(
                f"Requested video duration {found[1]}s 0ns exceeds the maximum allowed 10s 0ns"
            )
        if seconds < 3:
            raise NativeError(
                f"Requested video duration {found[1]}s 0ns is less than the minimum allowed "
                "3s 0ns")  # fmt: skip

    # --- poll ---------------------------------------------------------------------------------

    def _unknown(self, ident: str) -> web.Response:
        if self.unknown_interaction == 404:
            return self._error(NativeError(f"Interaction {ident} not found", 404, "not_found"))
        return self._error(NativeError(f"Invalid interaction name: {ident}"))

    async def _poll(self, request: web.Request) -> web.Response:
        refused = self._refused(request, "poll")
        if refused is not None:
            return refused
        item = self.interactions.get(request.match_info["id"])
        if item is None:
            return self._unknown(request.match_info["id"])
        item.polls += 1
        base = {"id": item.id, "object": "interaction", "model": item.model,
                "created": item.created, "updated": _stamp()}  # fmt: skip
        if item.cancelled:
            return web.json_response({**base, "status": "cancelled"})
        if item.polls < self.polls_to_finish:
            queued = self.queued_first and item.polls == 1
            return web.json_response({**base, "status": "queued" if queued else "in_progress"})
        asked = item.body.get("input")
        prompt = asked if isinstance(asked, str) else [b for b in asked if b.get("type") == "text"]
        user = {"type": "user_input", "content": prompt if isinstance(prompt, list) else [
            {"type": "text", "text": prompt}]}  # fmt: skip
        if item.outcome == "fail":
            return web.json_response({**base, **self._failed()})
        if item.outcome == "moderation":
            output = {"type": "model_output", "content": [{"type": "text", "text": REFUSAL}]}
            usage = {"total_input_tokens": 42, "total_output_tokens": 31,
                     "output_tokens_by_modality": [{"modality": "text", "tokens": 31}]}  # fmt: skip
            return web.json_response(
                {**base, "status": "completed", "steps": [output], "usage": usage}
            )
        video: dict[str, Any] = {"type": "video", "mime_type": "video/mp4"}
        if self.result == "inline":
            video["data"] = base64.b64encode(VIDEO).decode()
        else:
            video["uri"] = self._uri(item.file_id)
        thought = {"type": "thought", "signature": "EpcwCpQwAQw51sdI", "summary": None,
                   "content": []}  # fmt: skip
        content = [] if self.result == "unparsed" else [video]
        steps = [user, thought, {"type": "model_output", "error": None, "content": content}]
        usage = {"total_input_tokens": 50, "total_output_tokens": 58725, "total_tokens": 58775,
                 "output_tokens_by_modality": [{"modality": "video", "tokens": 57920}]}  # fmt: skip
        return web.json_response({**base, "status": "completed", "steps": steps, "usage": usage})

    def _failed(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"status": "failed"}
        step: dict[str, Any] = {"type": "model_output", "content": []}
        if self.failure == "error":
            answer["error"] = {"code": "internal", "message": "video generation failed"}
        elif self.failure == "errors":
            answer["errors"] = [{"code": "generation_failed", "message": "no video produced"}]
        elif self.failure == "step":
            step["error"] = {"code": 13, "message": "internal error"}
        else:
            answer["finish_reason"] = "OTHER"
        answer["steps"] = [step]
        return answer

    def _uri(self, file_id: str) -> str:
        host = "https://files.example.test" if self.foreign_uri else self.base_url
        self.issued.add(f"/v1beta/files/{file_id}:download?alt=media")
        return {
            "download": f"{host}/v1beta/files/{file_id}:download?alt=media",
            "file": f"{host}/v1beta/files/{file_id}",
            "name": f"files/{file_id}",
        }[self.uri_shape]

    async def _cancel(self, request: web.Request) -> web.Response:
        refused = self._refused(request, "poll")
        if refused is not None:
            return refused
        item = self.interactions.get(request.match_info["id"])
        if item is None:
            return self._unknown(request.match_info["id"])
        if item.polls >= self.polls_to_finish or item.cancelled:
            return self._error(NativeError("Only running background interactions can be cancelled"))
        item.cancelled = True
        return web.json_response({"id": item.id, "status": "cancelled", "object": "interaction"})

    async def _delete(self, request: web.Request) -> web.Response:
        refused = self._refused(request, "poll")
        if refused is not None:
            return refused
        if self.interactions.pop(request.match_info["id"], None) is None:
            return self._unknown(request.match_info["id"])
        return web.json_response({})

    # --- files --------------------------------------------------------------------------------

    def _item_of(self, file_id: str) -> Interaction | None:
        return next((i for i in self.interactions.values() if i.file_id == file_id), None)

    async def _file(self, request: web.Request) -> web.Response:
        refused = self._refused(request, "file")
        if refused is not None:
            return refused
        file_id = request.match_info["name"]
        item = self._item_of(file_id)
        if item is None or file_id in self.expired_files:
            return self._answer(*ERRORS["expired"])
        item.file_reads += 1
        state = "ACTIVE"
        if item.file_reads <= self.processing_reads:
            state = "PROCESSING"
        elif self.file_failed:
            state = "FAILED"
        created = time.time()
        return web.json_response({
            "name": f"files/{file_id}", "mimeType": "video/mp4", "sizeBytes": str(len(VIDEO)),
            "createTime": _stamp(created), "updateTime": _stamp(created),
            "expirationTime": _stamp(created + 2 * 24 * 3600), "sha256Hash": "…",
            "uri": self.url(f"/v1beta/files/{file_id}"), "state": state, "source": "GENERATED",
        })  # fmt: skip

    async def _download(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request, "download")
        if refused is not None:
            return refused
        if request.query.get("alt") != "media":
            return self._error(NativeError("alt=media is required to download a file"))
        file_id = request.match_info["name"]
        item = self._item_of(file_id)
        if (
            item is None
            or file_id in self.expired_files
            or item.file_reads <= self.processing_reads
        ):
            return self._answer(*ERRORS["expired"])
        self.files[file_id] = VIDEO
        if self.redirect_download:
            assert self.storage is not None
            location = str(self.storage.make_url(f"/omni-files/{file_id}"))
            return web.Response(status=302, headers={"Location": location})
        return await self._serve_cdn(request)  # the base CDN: Range, knobs, expire_urls

    async def _serve_storage(self, request: web.Request) -> web.StreamResponse:
        self.storage_requests.append(
            Recorded(request.method, request.path, dict(request.query), dict(request.headers), b"")
        )
        if "x-goog-api-key" in request.headers:  # a signed URL refuses a second credential
            return web.Response(status=400, text="<Error><Code>InvalidArgument</Code></Error>",
                                content_type="application/xml")  # fmt: skip
        return await self._serve_cdn(request)
