"""A fake Gemini API for Veo (shared/spec/providers/veo.md), faithful to the page.

Two servers. The API: `POST /v1beta/models/{model}:predictLongRunning`, `GET /v1beta/{name}` for
operations, and `GET /v1beta/files/{file}:download?alt=media`, all behind `x-goog-api-key` (a
`?key=` query is accepted too, as Google does; a bad key is the page's 400 API_KEY_INVALID). The
download answers a 302 to a signed URL on the *storage* server, another TestServer on another
port, standing in for Google's storage host: it serves the file when the signature is right
and records every header it is sent, so a test can prove the API key never reached it.

An operation has no `done` while it runs and ends after `polls_to_finish` polls by its prompt
marker (#fail: error code 13; #moderation: raiMediaFilteredCount; #reject: the submit's 400).
Knobs:

    fail_next(where, kind, retry_delay=)  the next submit / poll / download answers ERRORS[kind]
    running_done_false    running operations say `"done": false, "metadata": {}` (unconfirmed)
    result                "uri" (a Files API URI), "inline" (encodedVideo), "empty" (no samples)
    inline_bytes          how much of the video an inline sample holds (None: all of it)
    moderation            "rai" (filtered count and reasons) or "error" (code 3, safety message)
    redirect_download     the download 302s to storage (True) or answers the bytes itself
    reject_vertex_only    Vertex-only parameters get a 400 (unconfirmed whether the live API
                          rejects or ignores them; on, so an adapter that sends them is caught)
    key_blocked           a right key answers 403 API_KEY_SERVICE_BLOCKED
    expire_files()        downloads answer 404, as 2 days after generation

The contract hooks (tests/fakes/base.py): `contract_error` scripts the page's 400
API_KEY_INVALID ("auth") or its 429 RESOURCE_EXHAUSTED with RetryInfo ("rate_limit"; the wait is
the body's `retryDelay`, Google sends no Retry-After header); `forget_tasks` drops every
operation (a poll then answers the page's 404 NOT_FOUND); `expire_urls` makes every signed
storage URL handed out so far answer 403, while the Files API URI itself never changes (a new
download signs a new storage URL), so a new poll renews nothing. Veo operations cannot be
cancelled or deleted.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import string
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.fakes.base import VIDEO, FakeUpstream, Recorded, outcome

MODELS = {
    "veo-3.1-generate-preview": "3.1",
    "veo-3.1-fast-generate-preview": "3.1",
    "veo-3.0-generate-001": "3",
    "veo-3.0-fast-generate-001": "3",
    "veo-2.0-generate-001": "2",
}
VERTEX_ONLY = (
    "seed",
    "generateAudio",
    "fps",
    "storageUri",
    "compressionQuality",
    "resizeMode",
    "pubsubTopic",
    "mask",
)
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
RESPONSE_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
FILE_TTL_S = 2 * 24 * 3600
RAI_REASON = "The prompt references a real person, which is not allowed."
SAFETY_MESSAGE = "The video could not be generated because it was blocked by safety filters."
_ALPHABET = string.ascii_lowercase + string.digits


def envelope(code: int, status: str, message: str, details: list[Any] | None = None) -> Any:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_info(reason: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }


def rate_limited(retry_delay: str = "41s") -> Any:
    return envelope(
        429,
        "RESOURCE_EXHAUSTED",
        "quota exceeded for this model",
        [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/predict_long_running",
                        "quotaId": "PredictLongRunningRequestsPerMinutePerProjectPerModel",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
        ],
    )


# kind -> (HTTP status, body), the page's table of error answers
ERRORS: dict[str, tuple[int, Any]] = {
    "auth": (400, envelope(400, "INVALID_ARGUMENT", "API key not valid.", [
        error_info("API_KEY_INVALID")])),
    "blocked": (403, envelope(
        403, "PERMISSION_DENIED",
        "Requests to this API generativelanguage.googleapis.com method "
        "google.ai.generativelanguage.v1beta.PredictionService.PredictLongRunning are blocked.",
        [error_info("API_KEY_SERVICE_BLOCKED")])),
    "rate_limit": (429, rate_limited()),
    "quota": (429, envelope(
        429, "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details.")),
    "bad_request": (400, envelope(400, "INVALID_ARGUMENT", "durationSeconds must be 8 for 1080p")),
    "region": (400, envelope(
        400, "FAILED_PRECONDITION", "User location is not supported for the API use.")),
    "internal": (500, envelope(500, "INTERNAL", "An internal error has occurred.")),
    "unavailable": (503, envelope(503, "UNAVAILABLE", "The model is overloaded.")),
    "timeout": (504, envelope(
        504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.")),
}  # fmt: skip


class NativeError(Exception):
    def __init__(self, message: str, code: int = 400, status: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


@dataclass
class Operation:
    name: str
    model: str
    body: dict[str, Any]
    outcome: str
    file_id: str
    polls: int = 0


def _id(length: int = 12) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class VeoFake(FakeUpstream):
    name: ClassVar[str] = "veo"
    supports_delete: ClassVar[bool] = False  # operations cannot be cancelled or deleted
    renews_urls: ClassVar[bool] = False  # the result is a fixed Files API URI
    # the 429 carries its wait as RetryInfo.retryDelay in the body (no header), which the
    # adapter reads as the retry-after
    retry_after_header: ClassVar[bool] = True

    def __init__(self, api_key: str = "AIzaSyFakeVeoKey-0123456789abcdefghij") -> None:
        self.api_key = api_key
        self.operations: dict[str, Operation] = {}
        self.running_done_false = False
        self.result = "uri"
        self.inline_bytes: int | None = None
        self.moderation = "rai"
        self.redirect_download = True
        self.reject_vertex_only = True
        self.key_blocked = False
        self.expired_files: set[str] = set()  # file ids past their 2 days
        self.scripted: dict[str, list[tuple[int, Any]]] = {"submit": [], "poll": [], "download": []}
        self.signatures: dict[str, str] = {}  # object name -> its valid signature
        self.storage_requests: list[Recorded] = []
        self.storage_app = web.Application(middlewares=[self._record_storage])
        self.storage_app.router.add_get("/{bucket}/{name}", self._serve_storage)
        self.storage: TestServer | None = None
        super().__init__()

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post(r"/v1beta/models/{model:[^/:]+}:predictLongRunning", self._submit)
        router.add_get(r"/v1beta/models/{model:[^/:]+}/operations/{op}", self._operation)
        router.add_get(r"/v1beta/files/{file:[^/:]+}:download", self._download)

    def channel(self, base_url: str) -> dict[str, Any]:
        return {
            "name": "veo",
            "provider": "veo",
            "base_url": base_url,
            "api_key": self.api_key,
            "models": ["sora-2", *MODELS],
            "model_map": {"sora-2": "veo-3.1-generate-preview"},
        }

    # --- running: the API and the storage host ---------------------------------------------

    async def start(self) -> str:
        self.storage = TestServer(self.storage_app, host="127.0.0.1")
        await self.storage.start_server()
        return await super().start()

    async def close(self) -> None:
        await super().close()
        if self.storage is not None:
            await self.storage.close()

    @property
    def storage_url(self) -> str:
        assert self.storage is not None
        return str(self.storage.make_url("")).rstrip("/")

    # --- knobs ------------------------------------------------------------------------------

    def fail_next(self, where: str, kind: str, retry_delay: str | None = None) -> None:
        status, body = ERRORS[kind]
        if kind == "rate_limit" and retry_delay is not None:
            body = rate_limited(retry_delay)
        self.scripted[where].append((status, body))

    def expire_files(self) -> None:
        self.expired_files.update(op.file_id for op in self.operations.values())

    # --- the contract hooks -------------------------------------------------------------------

    def contract_error(self, op: str, kind: str, retry_after: int | None = None) -> None:
        self.fail_next(op, kind, None if retry_after is None else f"{retry_after}s")

    def forget_tasks(self) -> None:
        self.operations.clear()

    def creates(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(":predictLongRunning")]

    def storage_keys_seen(self) -> list[str]:
        """Every credential-looking header the storage host was sent (it must stay empty)."""
        return [
            f"{k}: {v}"
            for r in self.storage_requests
            for k, v in r.headers.items()
            if k.lower() in ("x-goog-api-key", "authorization") or self.api_key in v
        ] + [r.query["key"] for r in self.storage_requests if "key" in r.query]

    # --- auth and errors ----------------------------------------------------------------------

    def _refused(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if key is None:
            if request.headers.get("Authorization"):
                return web.json_response(envelope(
                    401, "UNAUTHENTICATED",
                    "Request had invalid authentication credentials. Expected OAuth 2 access "
                    "token, login cookie or other valid authentication credential.",
                ), status=401)  # fmt: skip
            return web.json_response(envelope(
                403, "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            ), status=403)  # fmt: skip
        if key != self.api_key:
            return web.json_response(ERRORS["auth"][1], status=400)
        if self.key_blocked:
            return web.json_response(ERRORS["blocked"][1], status=403)
        return None

    def _scripted(self, where: str) -> web.Response | None:
        if not self.scripted[where]:
            return None
        status, body = self.scripted[where].pop(0)
        return web.json_response(body, status=status)

    @staticmethod
    def _error(exc: NativeError) -> web.Response:
        return web.json_response(envelope(exc.code, exc.status, exc.message), status=exc.code)

    # --- submit -------------------------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.Response:
        refused = self._refused(request) or self._scripted("submit")
        if refused is not None:
            return refused
        model = request.match_info["model"]
        if model not in MODELS:
            return self._error(NativeError(
                f"models/{model} is not found for API version v1beta, or is not supported for "
                "predictLongRunning. Call ListModels to see the list of available models and "
                "their supported methods.", 404, "NOT_FOUND",
            ))  # fmt: skip
        try:
            body = await request.json()
        except ValueError:
            return self._error(NativeError("Invalid JSON payload received."))
        try:
            self._validate(MODELS[model], body)
        except NativeError as exc:
            return self._error(exc)
        result = outcome(body["instances"][0].get("prompt") or "")
        if result == "reject":
            return self._error(NativeError("prompt blocked by safety filters"))
        name = f"models/{model}/operations/{_id()}"
        self.operations[name] = Operation(name, model, body, result, _id())
        return web.json_response({"name": name})

    def _validate(self, version: str, body: Any) -> None:
        if not isinstance(body, dict):
            raise NativeError("Invalid JSON payload received.")
        instances = body.get("instances")
        if not isinstance(instances, list) or len(instances) != 1:
            raise NativeError("instances must hold exactly one instance")
        instance = instances[0]
        if not isinstance(instance, dict):
            raise NativeError("instances[0] must be an object")
        prompt = instance.get("prompt")
        if prompt is None and "image" not in instance:
            raise NativeError("prompt is required")
        if prompt is not None and not isinstance(prompt, str):
            raise NativeError("prompt must be a string")
        if "image" in instance:
            self._image(instance["image"], "image")
        if "lastFrame" in instance:
            if "image" not in instance:
                raise NativeError("lastFrame requires image")
            self._image(instance["lastFrame"], "lastFrame")
        references = instance.get("referenceImages")
        if references is not None:
            if version != "3.1":
                raise NativeError("referenceImages isn't supported by this model.")
            if not isinstance(references, list) or not 1 <= len(references) <= 3:
                raise NativeError("referenceImages must hold 1 to 3 images")
            for item in references:
                if not isinstance(item, dict) or item.get("referenceType") != "asset":
                    raise NativeError("referenceImages[].referenceType must be asset")
                self._image(item.get("image"), "referenceImages[].image")
        if "video" in instance and (version != "3.1" or not isinstance(instance["video"], dict)):
            raise NativeError("video (extension) isn't supported by this model.")
        self._parameters(version, body.get("parameters", {}), instance)

    def _parameters(self, version: str, params: Any, instance: dict[str, Any]) -> None:
        if not isinstance(params, dict):
            raise NativeError("parameters must be an object")
        if self.reject_vertex_only:
            for key in VERTEX_ONLY:
                if key in params:
                    raise NativeError(
                        f"`{key}` isn't supported by this model. Please remove it or refer to "
                        "the Gemini API documentation for supported usage."
                    )
        if params.get("aspectRatio", "16:9") not in ("16:9", "9:16"):
            raise NativeError("aspectRatio must be 16:9 or 9:16")
        resolution = params.get("resolution")
        if resolution is not None:
            if version == "2":
                raise NativeError("resolution isn't supported by this model.")
            allowed = ("720p", "1080p", "4k") if version == "3.1" else ("720p", "1080p")
            if resolution not in allowed:
                raise NativeError(f"resolution must be one of {', '.join(allowed)}")
        seconds = params.get("durationSeconds", 8)
        if isinstance(seconds, str) and seconds.isdigit():  # unconfirmed: a string is taken too
            seconds = int(seconds)
        durations = (5, 6, 8) if version == "2" else (4, 6, 8)
        if type(seconds) is not int or seconds not in durations:
            raise NativeError(f"durationSeconds must be one of {', '.join(map(str, durations))}")
        if seconds != 8:
            if resolution in ("1080p", "4k"):
                raise NativeError(f"durationSeconds must be 8 for {resolution}")
            if "referenceImages" in instance or "video" in instance:
                raise NativeError("durationSeconds must be 8 with referenceImages or video")
        person = params.get("personGeneration")
        if person is not None and person not in self._people(version, instance):
            raise NativeError(f"personGeneration {person!r} is not allowed for this request")
        count = params.get("sampleCount", 1)
        if type(count) is not int or not 1 <= count <= 4:
            raise NativeError("sampleCount must be between 1 and 4")
        if "negativePrompt" in params and not isinstance(params["negativePrompt"], str):
            raise NativeError("negativePrompt must be a string")
        if "enhancePrompt" in params and not isinstance(params["enhancePrompt"], bool):
            raise NativeError("enhancePrompt must be a boolean")

    @staticmethod
    def _people(version: str, instance: dict[str, Any]) -> tuple[str, ...]:
        images = any(k in instance for k in ("image", "lastFrame", "referenceImages"))
        if version == "2":
            return ("allow_adult", "dont_allow") if images else (
                "allow_all", "allow_adult", "dont_allow")  # fmt: skip
        # allow_adult in text-to-video: the only value in the EU, UK, CH and MENA
        return ("allow_adult",) if images else ("allow_all", "allow_adult")

    @staticmethod
    def _image(image: Any, field: str) -> None:
        """Inline bytes only: `{bytesBase64Encoded, mimeType}` or `{inlineData: {mimeType,
        data}}` (the page is unsure which; both are taken). A URI is refused."""
        if not isinstance(image, dict):
            raise NativeError(f"{field} must be an object with inline image bytes")
        if "gcsUri" in image or "uri" in image:
            raise NativeError(f"{field}: gcsUri isn't supported by this model; send inline bytes")
        part = image.get("inlineData", image)
        data = part.get("data", part.get("bytesBase64Encoded")) if isinstance(part, dict) else None
        mime = part.get("mimeType") if isinstance(part, dict) else None
        if not isinstance(data, str) or not data:
            raise NativeError(f"{field}.bytesBase64Encoded is required")
        if mime not in IMAGE_TYPES:
            raise NativeError(f"{field}.mimeType must be one of {', '.join(IMAGE_TYPES)}")
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise NativeError(f"{field}: invalid base64 image bytes") from None

    # --- operations ---------------------------------------------------------------------------

    async def _operation(self, request: web.Request) -> web.Response:
        refused = self._refused(request) or self._scripted("poll")
        if refused is not None:
            return refused
        name = f"models/{request.match_info['model']}/operations/{request.match_info['op']}"
        op = self.operations.get(name)
        if op is None:
            return self._error(NativeError("operation not found", 404, "NOT_FOUND"))
        op.polls += 1
        if op.polls < self.polls_to_finish:
            if self.running_done_false:
                return web.json_response({"name": name, "done": False, "metadata": {}})
            return web.json_response({"name": name})
        answer: dict[str, Any] = {"name": name, "done": True}
        if op.outcome == "fail":
            answer["error"] = {"code": 13, "message": "internal error while generating the video"}
        elif op.outcome == "moderation" and self.moderation == "error":
            answer["error"] = {"code": 3, "message": SAFETY_MESSAGE, "status": "INVALID_ARGUMENT"}
        elif op.outcome == "moderation":
            answer["response"] = self._response(
                {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [RAI_REASON]}
            )
        elif self.result == "empty":
            answer["response"] = self._response({})
        elif self.result == "inline":
            data = VIDEO[: self.inline_bytes] if self.inline_bytes is not None else VIDEO
            video = {"encodedVideo": base64.b64encode(data).decode(), "encoding": "video/mp4"}
            answer["response"] = self._response({"generatedSamples": [{"video": video}]})
        else:
            uri = self.url(f"/v1beta/files/{op.file_id}:download?alt=media")
            answer["response"] = self._response({"generatedSamples": [{"video": {"uri": uri}}]})
        return web.json_response(answer)

    @staticmethod
    def _response(result: dict[str, Any]) -> dict[str, Any]:
        return {"@type": RESPONSE_TYPE, "generateVideoResponse": result}

    # --- files --------------------------------------------------------------------------------

    async def _download(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request) or self._scripted("download")
        if refused is not None:
            return refused
        if request.query.get("alt") != "media":
            return self._error(NativeError("alt=media is required to download a file"))
        file_id = request.match_info["file"]
        known = any(op.file_id == file_id for op in self.operations.values())
        if not known or file_id in self.expired_files:
            return self._error(NativeError("File not found.", 404, "NOT_FOUND"))
        if not self.redirect_download:
            return web.Response(body=VIDEO, content_type="video/mp4")
        # the Location exactly as signed (HTTPFound would re-encode %40 and %2F in the query)
        return web.Response(status=302, headers={"Location": self._signed(f"{file_id}.mp4")})

    def _signed(self, name: str) -> str:
        signature = secrets.token_hex(32)
        self.signatures[name] = signature
        self.files[name] = VIDEO
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        query = (
            "X-Goog-Algorithm=GOOG4-RSA-SHA256"
            "&X-Goog-Credential=veo-files%40fake.iam.gserviceaccount.com%2F20250101%2Fauto"
            f"%2Fstorage%2Fgoog4_request&X-Goog-Date={stamp}&X-Goog-Expires={FILE_TTL_S}"
            f"&X-Goog-SignedHeaders=host&X-Goog-Signature={signature}"
        )
        relative = f"/generativelanguage-files/{name}?{query}"
        self.issued.add(relative)  # so expire_urls() reaches it (the base CDN checks it)
        return self.storage_url + relative

    @web.middleware
    async def _record_storage(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.storage_requests.append(
            Recorded(request.method, request.path, dict(request.query), dict(request.headers), b"")
        )
        return await handler(request)  # type: ignore[no-any-return]

    async def _serve_storage(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if request.query.get("X-Goog-Signature") != self.signatures.get(name):
            return web.Response(
                status=403,
                text="<?xml version='1.0' encoding='UTF-8'?><Error><Code>SignatureDoesNotMatch"
                "</Code><Message>Access denied.</Message></Error>",
                content_type="application/xml",
            )
        return await self._serve_cdn(request)  # the base CDN: Range, knobs, stats
