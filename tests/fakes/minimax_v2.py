"""A fake MiniMax V2 video API (spec/providers/minimax-v2.md), faithful to the page.

Routes: `POST /v2/video_generation` (-> `{"task_id"}`), `GET /v2/query/video_generation/{id}`
(-> `{"task": {...}}`), the list `GET /v2/query/video_generation?page_num&page_size&filter.*`
(-> `{"items", "total"}`, newest first), `DELETE /v2/video_generation/{id}` (cancels a queued
task, refuses a running one, deletes a finished one's record), `POST /v2/h3_context_ir` (a text
task whose `content.prompt` is the expanded prompt) and `POST /v2/video_regeneration` (a 2K
re-render of a `base_video`). Nothing answers on the V1 paths. `Authorization: Bearer <key>`;
a missing or wrong key is 401 `authorized_error`. Errors are real HTTP statuses with the
Anthropic-style envelope `{"type": "error", "error": {type, message, http_code}, "request_id"}`.

The create body is checked as the page's field table and rules say: `content[]` with a non-empty
text item (<= 7000 chars), typed media items with their roles, frame and reference modes not
mixed, the reference-mode counts; `resolution` (upper case, per model) and `duration` (4-15)
required; `ratio` defaulting to `adaptive`, which a text-only request may not use; media URLs
as http(s), `mm_file://` or a data URL (images and videos only); a body over 64 MB is a 413.
Media URLs on this sandbox's loopback (what the relay hosts) are fetched as MiniMax would, into
`fetched`, and a failed download refuses the create; other hosts are taken as reachable.

Statuses go `queued` (the first query, when `polls_to_finish` > 2), `running`, then the end at
`polls_to_finish` queries. Markers beyond the shared ones ("#fail": `failed` with code "1000";
"#moderation": `failed` with `moderation_code`; "#reject": 422 at submit): "#expired",
"#cancelled" end in that status, "#nooutput" succeeds without `content.url`, "#ir-fail" fails a
context-IR task. Each query of a succeeded task signs a fresh CDN URL (`Expires`, a
`Signature` with percent-encoded characters); the CDN refuses a URL whose query it did not sign
exactly, and one revoked by `expire_urls()`.

The page's unconfirmed points are knobs, each form emitted on request: `envelope`
("anthropic", "plain" text, or a V1-style "base_resp"), `invalid_task_status` (400 or 404),
`running_delete_status` (400 or 409), `string_timestamps`, `url_expires` (the URL with or
without `Expires`), `redirect` (the URL 302s to the CDN), `moderation_code` ("1026" or
"1027"); "#expired" emits the `expired` status some integrations list.

Contract hooks: the auth error is the page's 401, the rate limit a 429 without Retry-After (the
page shows none); `forget_tasks` makes every query answer `invalid task_id`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

import aiohttp
from aiohttp import web
from yarl import URL

from tests.fakes.base import VIDEO, FakeUpstream, outcome

API_KEY = "sk-api-v2-0123456789abcdefghijklmnopqrstuv"
H3, H3_MAX = "MiniMax-H3", "MiniMax-H3-Max"
RESOLUTIONS = {H3: ("768P", "2K"), H3_MAX: ("480P", "768P")}
RATIOS = ("adaptive", "21:9", "16:9", "4:3", "1:1", "3:4", "9:16")
ROLES = {
    "image_url": ("first_frame", "last_frame", "reference_image"),
    "video_url": ("reference_video",),
    "audio_url": ("reference_audio",),
}
FRAME_ROLES = {"first_frame", "last_frame"}
MAX_BODY = 64 * 1024 * 1024
MAX_BYTES = {"image_url": 30 * 1024 * 1024, "video_url": 50 * 1024 * 1024}
DATA_PREFIX = {"image_url": "data:image/", "video_url": "data:video/"}
# the three attested type names, then what the page lets a fake assume
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authorized_error",
    402: "insufficient_balance_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "unprocessable_entity_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
}
V1_CODES = {400: 2013, 401: 1004, 402: 1008, 404: 2013, 409: 2013, 413: 2013, 422: 1026,
            429: 1002}  # fmt: skip
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "expired"})


class Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Scripted:
    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # sent as it is (an HTML page)


@dataclass
class FakeTask:
    id: str
    model: str
    task_type: str  # generation, h3_context_ir, regeneration
    body: dict[str, Any]
    outcome: str
    text: str
    created_at: int
    updated_at: int
    status: str = "queued"
    polls: int = 0


class MinimaxV2Fake(FakeUpstream):
    name: ClassVar[str] = "minimax-v2"
    supports_delete: ClassVar[bool] = True
    supports_cancel: ClassVar[bool] = True  # the same DELETE, on a queued task
    renews_urls: ClassVar[bool] = True  # every query signs a fresh URL
    retry_after_header: ClassVar[bool] = False

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.tasks: dict[str, FakeTask] = {}
        self.signed: dict[str, set[str]] = {}  # CDN object -> the queries signed for it
        self.scripted: dict[str, list[Scripted]] = {"submit": [], "poll": [], "delete": []}
        self.status_override: str | None = None
        # the page's unconfirmed points
        self.envelope = "anthropic"  # "plain" text, or a V1-style "base_resp"
        self.invalid_task_status = 400  # 404 possible
        self.running_delete_status = 400  # 409 possible
        self.string_timestamps = False
        self.url_expires = True
        self.redirect = False
        self.moderation_code = "1027"  # "1026" for sensitive input
        self.fetched: dict[str, bytes] = {}  # media URL -> the bytes its GET answered
        super().__init__()
        self.app._client_max_size = MAX_BODY + 1024 * 1024  # the page's 413 is the fake's own

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v2/video_generation", self._create)
        router.add_get("/v2/query/video_generation/{id}", self._query)
        router.add_get("/v2/query/video_generation", self._list)
        router.add_delete("/v2/video_generation/{id}", self._delete)
        router.add_post("/v2/h3_context_ir", self._context_ir)
        router.add_post("/v2/video_regeneration", self._regeneration)
        router.add_get("/hailuo/{name}", self._redirect)

    def channel(self, base_url: str, **overrides: Any) -> dict[str, Any]:
        return {
            "name": "minimax-v2",
            "provider": "minimax-v2",
            "base_url": base_url,
            "api_key": self.api_key,
            "models": ["sora-2", H3, H3_MAX],
            "model_map": {"sora-2": H3},
            "options": {"poll_interval_s": 0},  # the page's 10 s would only slow the tests
            **overrides,
        }

    # --- knobs and hooks --------------------------------------------------------------------

    def fail_next(
        self,
        op: str,
        status: int,
        message: str = "",
        *,
        retry_after: str | None = None,
        body: bytes | None = None,
    ) -> None:
        """The next `op` ("submit", "poll", "delete") answers this error."""
        headers = {"Retry-After": retry_after} if retry_after else {}
        self.scripted[op].append(Scripted(status, message or f"error {status}", headers, body))

    def contract_error(self, op: str, kind: str, retry_after: int | None = None) -> None:
        if kind == "auth":
            self.fail_next(op, 401, "invalid api key")
        elif kind == "rate_limit":
            self.fail_next(op, 429, "rate limit exceeded, please retry later")
        else:
            raise ValueError(f"no contract error {kind!r}")

    def forget_tasks(self) -> None:
        self.tasks.clear()

    def creates(self, path: str = "/v2/video_generation") -> list[Any]:
        return [r.json() for r in self.calls(path, "POST") if r.path == path]

    # --- native answers ---------------------------------------------------------------------

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        if self.envelope == "plain":
            return web.Response(status=status, text=message, headers=headers)
        if self.envelope == "base_resp":
            code = V1_CODES.get(status, 1000)
            body: dict[str, Any] = {"base_resp": {"status_code": code, "status_msg": message}}
        else:
            body = {
                "type": "error",
                "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message,
                          "http_code": status},
                "request_id": uuid.uuid4().hex,
            }  # fmt: skip
        return web.json_response(body, status=status, headers=headers)

    def _refused(self, request: web.Request, op: str) -> web.StreamResponse | None:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self.error(401, "invalid api key")
        if self.scripted[op]:
            s = self.scripted[op].pop(0)
            if s.body is not None:
                return web.Response(status=s.status, body=s.body, content_type="text/html")
            return self.error(s.status, s.message, s.headers)
        return None

    async def _json(self, request: web.Request) -> dict[str, Any]:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise Refusal(413, "request body too large")
        if request.content_type != "application/json":
            raise Refusal(400, "Content-Type must be application/json")
        try:
            body = await request.json()
        except ValueError:
            raise Refusal(400, "invalid JSON body") from None
        if not isinstance(body, dict):
            raise Refusal(400, "the body must be a JSON object")
        return body

    def _stamp(self, value: int) -> int | str:
        return str(value) if self.string_timestamps else value

    # --- create -----------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request, "submit")
        if refused is not None:
            return refused
        try:
            body = await self._json(request)
            text = _generation(body)
        except Refusal as exc:
            return self.error(exc.status, exc.message)
        failed = await self._download(body["content"])
        if failed is not None:
            return failed
        fate = outcome(text)
        if fate == "reject":
            return self.error(
                422, "input new_sensitive: video description contains sensitive content"
            )
        for marker in ("expired", "cancelled", "nooutput"):
            if f"#{marker}" in text:
                fate = marker
        return self._made(body["model"], "generation", body, fate, text)

    async def _context_ir(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request, "submit")
        if refused is not None:
            return refused
        try:
            body = await self._json(request)
            text = _text(body.get("content"))
            _content(body["content"], body.get("model", H3))
            _duration(body.get("duration"))
            if body.get("ratio", "adaptive") not in RATIOS:
                raise Refusal(400, f"invalid ratio {body.get('ratio')!r}")
        except Refusal as exc:
            return self.error(exc.status, exc.message)
        failed = await self._download(body["content"])
        if failed is not None:
            return failed
        fate = "fail" if "#ir-fail" in text else "complete"
        return self._made(str(body.get("model", H3)), "h3_context_ir", body, fate, text)

    async def _regeneration(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request, "submit")
        if refused is not None:
            return refused
        try:
            body = await self._json(request)
            items = body.get("content")
            base = [i for i in items or [] if isinstance(i, dict) and i.get("role") == "base_video"]
            if len(base) != 1 or base[0].get("type") != "video_url":
                raise Refusal(400, "content needs one video_url item with role base_video")
            _url(base[0], "video_url")
        except Refusal as exc:
            return self.error(exc.status, exc.message)
        return self._made(str(body.get("model", H3)), "regeneration", body, "complete", "")

    async def _download(self, content: list[Any]) -> web.Response | None:
        """GET each media URL as MiniMax would, where this sandbox can reach its host (the
        relay's own /v1/files); other hosts are taken as public and reachable."""
        for n, entry in enumerate(content):
            kind = entry.get("type") if isinstance(entry, dict) else None
            url = entry[kind]["url"] if kind in ROLES else ""
            if not url.startswith("http") or URL(url).host not in ("127.0.0.1", "localhost"):
                continue
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(URL(url, encoded=True)) as got,
                ):
                    if got.status != 200:
                        return self.error(400, f"failed to download content[{n}] {kind}.url")
                    self.fetched[url] = await got.read()
            except aiohttp.ClientError:
                return self.error(400, f"failed to download content[{n}] {kind}.url")
        return None

    def _made(
        self, model: str, task_type: str, body: dict[str, Any], fate: str, text: str
    ) -> web.Response:
        stamp = int(time.time())
        task_id = str(secrets.randbelow(9 * 10**14) + 10**14)  # 15 digits, as the examples
        self.tasks[task_id] = FakeTask(task_id, model, task_type, body, fate, text, stamp, stamp)
        return web.json_response({"task_id": task_id})

    # --- query, list, delete ----------------------------------------------------------------

    def _unknown(self) -> web.Response:
        return self.error(self.invalid_task_status, "invalid task_id")

    async def _query(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request, "poll")
        if refused is not None:
            return refused
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return self._unknown()
        self._advance(task)
        return web.json_response({"task": self.render(task)})

    async def _list(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request, "poll")
        if refused is not None:
            return refused
        q = request.query
        ids = {i for v in q.getall("filter.task_ids", []) for i in v.split(",") if i}
        found = [
            t
            for t in reversed(self.tasks.values())  # newest first
            if (not ids or t.id in ids)
            and q.get("filter.status", t.status) == t.status
            and q.get("filter.model", t.model) == t.model
            and q.get("filter.task_type", t.task_type) == t.task_type
        ]
        try:
            page, size = int(q.get("page_num", "1")), int(q.get("page_size", "20"))
        except ValueError:
            return self.error(400, "page_num and page_size must be integers")
        shown = found[(page - 1) * size : page * size]
        return web.json_response({"items": [self.render(t) for t in shown], "total": len(found)})

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request, "delete")
        if refused is not None:
            return refused
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return self._unknown()
        if task.status == "running":
            return self.error(self.running_delete_status, "task is running and cannot be cancelled")
        if task.status == "queued":
            task.status, task.updated_at = "cancelled", int(time.time())
            return web.json_response(
                {"task_id": task.id, "action": "cancelled", "status": "cancelled"}
            )
        del self.tasks[task.id]
        return web.json_response({"task_id": task.id, "action": "deleted", "status": task.status})

    # --- task life --------------------------------------------------------------------------

    def _advance(self, task: FakeTask) -> None:
        if task.status in TERMINAL:
            return
        task.polls += 1
        if task.polls >= self.polls_to_finish:
            status = {"complete": "succeeded", "nooutput": "succeeded", "fail": "failed",
                      "moderation": "failed", "expired": "expired",
                      "cancelled": "cancelled"}[task.outcome]  # fmt: skip
        elif task.polls == 1 and self.polls_to_finish > 2:
            status = "queued"
        else:
            status = "running"
        if status != task.status:
            task.status, task.updated_at = status, int(time.time())

    def render(self, task: FakeTask) -> dict[str, Any]:
        status = self.status_override or task.status
        body = task.body
        text_task = task.task_type == "h3_context_ir"
        out: dict[str, Any] = {
            "id": task.id,
            "model": task.model,
            "status": status,
            "created_at": self._stamp(task.created_at),
            "updated_at": self._stamp(task.updated_at),
            "resolution": "2K" if task.task_type == "regeneration" else body.get("resolution"),
            "duration": body.get("duration", 5),
            "ratio": body.get("ratio", "adaptive"),
            "task_type": task.task_type,
            "modality": "text" if text_task else "video",
        }
        if status == "succeeded" and text_task:
            out["content"] = {"prompt": f"{task.text} Slow dolly-in, warm light, steady framing."}
            out["usage"] = {"input_tokens": 120, "output_tokens": 480, "total_tokens": 600}
        elif status == "succeeded" and task.outcome != "nooutput":
            out["content"] = {"url": self._signed_url(f"output_{task.id}.mp4")}
            seconds = out["duration"] if isinstance(out["duration"], int) else 5
            out["usage"] = {"total_seconds": seconds, "input_seconds": 0,
                            "output_seconds": seconds, "input_image_count": _images(body),
                            "input_audio_seconds": 0}  # fmt: skip
        elif status == "failed":
            code, message = {
                "moderation": (self.moderation_code, "video output contains sensitive content"),
            }.get(task.outcome, ("1000", "unknown error, please retry"))
            out["error"] = {"code": code, "message": message}
        return out

    # --- the CDN ----------------------------------------------------------------------------

    def _signed_url(self, name: str) -> str:
        self.files.setdefault(name, VIDEO)
        signature = base64.b64encode(secrets.token_bytes(30)).decode()  # has + / =
        query = f"Signature={quote(signature, safe='')}&OSSAccessKeyId=LTAI5tFake"
        if self.url_expires:
            query = f"Expires={int(time.time()) + 86400}&{query}"
        self.signed.setdefault(name, set()).add(query)
        if not self.redirect:
            return self.cdn_url(name, query)
        relative = f"/hailuo/{name}?{query}"
        self.issued.add(relative)
        return self.url(relative)

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        if request.raw_path in self.expired:
            return web.Response(status=403, text="AccessDenied: Request has expired")
        name, query = request.match_info["name"], request.raw_path.partition("?")[2]
        # a raw header: web.HTTPFound would re-quote the Location, and the signature with it
        return web.Response(status=302, headers={"Location": f"/cdn/{name}?{query}"})

    async def _serve_cdn(self, request: web.Request) -> web.StreamResponse:
        name, query = request.match_info["name"], request.raw_path.partition("?")[2]
        refused = request.raw_path in self.expired or query not in self.signed.get(name, {query})
        if refused and self.cdn.status is None:
            self.cdn_stats.requests += 1
            return web.Response(
                status=403,
                text="<Error><Code>SignatureDoesNotMatch</Code></Error>",
                content_type="application/xml",
            )
        return await super()._serve_cdn(request)


# --- the create body, as the page's table and rules have it -----------------------------------


def _generation(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model not in RESOLUTIONS:
        raise Refusal(400, f"invalid model {model!r}")
    text = _text(body.get("content"))
    kinds = _content(body["content"], model)
    if "resolution" not in body or "duration" not in body:
        raise Refusal(400, "resolution and duration are required")
    if body["resolution"] not in RESOLUTIONS[model]:
        raise Refusal(400, f"invalid resolution {body['resolution']!r} for {model}")
    _duration(body["duration"])
    ratio = body.get("ratio", "adaptive")
    if ratio not in RATIOS:
        raise Refusal(400, f"invalid ratio {ratio!r}")
    if ratio == "adaptive" and not kinds:
        raise Refusal(400, "ratio adaptive requires an image or video input")
    callback = body.get("callback_url")
    if callback is not None and not (isinstance(callback, str) and callback.startswith("https://")):
        raise Refusal(400, "callback_url must be an https URL")
    if not isinstance(body.get("aigc_watermark", False), bool):
        raise Refusal(400, "aigc_watermark must be a boolean")
    return text


def _text(content: Any) -> str:
    if not isinstance(content, list) or not content:
        raise Refusal(400, "content is required")
    texts = [i.get("text") for i in content if isinstance(i, dict) and i.get("type") == "text"]
    if not any(isinstance(t, str) and t.strip() for t in texts):
        raise Refusal(400, "content needs a non-empty text item")
    for t in texts:
        if not isinstance(t, str) or len(t) > 7000:
            raise Refusal(400, "text must be a string of at most 7000 characters")
    return " ".join(t for t in texts if isinstance(t, str))


def _duration(value: Any) -> None:
    if type(value) is not int or not 4 <= value <= 15:
        raise Refusal(400, "duration must be an integer from 4 to 15")


def _content(content: list[Any], model: Any) -> list[str]:
    """The media items' types, after checking each and the mode rules."""
    kinds: list[str] = []
    roles: list[str] = []
    for n, entry in enumerate(content):
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind == "text":
            continue
        if kind not in ROLES:
            raise Refusal(400, f"content[{n}].type {kind!r} is not supported")
        role = entry.get("role")
        if role not in ROLES[kind]:
            raise Refusal(400, f"content[{n}].role {role!r} is invalid for {kind}")
        _url(entry, kind)
        kinds.append(kind)
        roles.append(role)
    frames = [r for r in roles if r in FRAME_ROLES]
    references = [r for r in roles if r not in FRAME_ROLES]
    if frames and references:
        raise Refusal(400, "first_frame/last_frame cannot be mixed with reference_* items")
    if len(frames) != len(set(frames)):
        raise Refusal(400, "at most one first_frame and one last_frame")
    if references and model == H3_MAX:
        raise Refusal(400, f"{model} does not support reference inputs")
    count = {k: kinds.count(k) for k in ROLES}
    if count["image_url"] > 9 or count["video_url"] > 3 or count["audio_url"] > 3:
        raise Refusal(400, "too many reference items: 9 images, 3 videos, 3 audio clips at most")
    if len(references) > 12:
        raise Refusal(400, "at most 12 media items")
    if count["audio_url"] and not (count["image_url"] or count["video_url"]):
        raise Refusal(400, "reference_audio needs a reference image or video")
    return kinds


def _url(entry: dict[str, Any], kind: str) -> None:
    ref = entry.get(kind)
    url = ref.get("url") if isinstance(ref, dict) else None
    if not isinstance(url, str) or not url:
        raise Refusal(400, f"{kind}.url is required")
    if url.startswith(("https://", "http://", "mm_file://")):
        return
    prefix = DATA_PREFIX.get(kind)
    if prefix is None or not url.startswith(prefix) or ";base64," not in url:
        raise Refusal(400, f"{kind}.url must be a public URL, a data URL or mm_file://")
    try:
        data = base64.b64decode(url.partition(",")[2], validate=True)
    except (binascii.Error, ValueError):
        raise Refusal(400, f"{kind}.url is not valid base64") from None
    if len(data) > MAX_BYTES[kind]:
        raise Refusal(400, f"{kind} is larger than the limit")


def _images(body: dict[str, Any]) -> int:
    content = body.get("content")
    items = content if isinstance(content, list) else []
    return sum(isinstance(i, dict) and i.get("type") == "image_url" for i in items)
