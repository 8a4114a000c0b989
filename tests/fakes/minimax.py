"""A fake MiniMax Hailuo video API (spec/providers/minimax.md), faithful to the page.

`POST /v1/video_generation`, `GET /v1/query/video_generation?task_id=`, `GET
/v1/files/retrieve?file_id=`, Bearer API key. Every answer is HTTP 200 with the outcome in
`base_resp.status_code` (0 = OK), errors included: 1004 for a missing key, 2049 for a wrong one,
2013 for invalid parameters (and, as the page assumes, for an unknown task id), 1026 for a prompt
marked "#reject", 1027 on a "#moderation" task's Fail.

Statuses go Preparing, Queueing, Processing (the tail of that list fits `polls_to_finish`), then
Success with a string `file_id`; files/retrieve answers it as a JSON number, with a freshly
signed OSS-style `download_url` (and `backup_download_url` on a second host path) on every call.
The CDN refuses a URL whose signature is unknown, was re-encoded, or was revoked by
`expire_urls()`.

Knobs: `fail_next(op, code=..., status=..., retry_after=...)` queues an answer for the next
"create", "query" or "retrieve" (a business code inside a 200, or a gateway's HTTP status);
the page's unconfirmed points: `fail_code` (a Fail carrying a non-zero base_resp),
`file_id_before_success` ("empty" or "missing"), `lowercase_status` (callback-style statuses);
`primary_url` / `backup_url` (which URLs retrieve lists), `broken_primary` (the primary host
refuses every URL), `zero_bytes` (`file.bytes` of 0).

Contract hooks: an auth error is 2049 "invalid api key", a rate limit 1002 "rate limit exceeded",
both inside an HTTP 200 without a Retry-After header (the page shows none); there is no delete
endpoint; every retrieve signs a fresh URL.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import secrets
import struct
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from tests.fakes.base import VIDEO, FakeUpstream, outcome

T2V = frozenset({"MiniMax-Hailuo-2.3", "MiniMax-Hailuo-02", "T2V-01-Director", "T2V-01"})
I2V = frozenset(
    {
        "MiniMax-Hailuo-2.3",
        "MiniMax-Hailuo-2.3-Fast",
        "MiniMax-Hailuo-02",
        "I2V-01-Director",
        "I2V-01-live",
        "I2V-01",
    }
)
MODES = {
    "t2v": T2V,
    "i2v": I2V,
    "first_last": frozenset({"MiniMax-Hailuo-02"}),
    "s2v": frozenset({"S2V-01"}),
}
STEPS = ("Preparing", "Queueing", "Processing")
HAILUO = frozenset({"MiniMax-Hailuo-2.3", "MiniMax-Hailuo-2.3-Fast", "MiniMax-Hailuo-02"})
BOOLS = ("prompt_optimizer", "fast_pretreatment", "aigc_watermark")
DATA_URL = re.compile(r"^data:image/(png|jpeg|jpg|webp);base64,(.+)$", re.DOTALL)
SIDES = {"512P": 512, "720P": 720, "768P": 768, "1080P": 1080}
OK = {"status_code": 0, "status_msg": "success"}


def _resolutions(model: str, mode: str) -> tuple[str, ...]:
    if model == "MiniMax-Hailuo-02":
        return ("768P", "1080P", "512P") if mode == "i2v" else ("768P", "1080P")
    if model in HAILUO:
        return ("768P", "1080P")
    return ("720P",)


def _durations(model: str, resolution: str) -> tuple[int, ...]:
    return (6, 10) if model in HAILUO and resolution != "1080P" else (6,)


def _png_size(image: str) -> tuple[int, int] | None:
    """A PNG data URL's width and height: with a first frame the output follows its aspect."""
    match = DATA_URL.match(image)
    if match is None or match.group(1) != "png":
        return None
    head = base64.b64decode(match.group(2)[:64] + "=" * (-len(match.group(2)[:64]) % 4))
    if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 24:
        return None
    width, height = struct.unpack(">II", head[16:24])
    return (width, height) if width and height else None


class Invalid(Exception):
    """A 2013 invalid-parameters answer."""


@dataclass
class Task:
    id: str
    body: dict[str, Any]
    mode: str
    outcome: str
    width: int
    height: int
    polls: int = 0
    file_id: str = ""


@dataclass
class Scripted:
    status: int
    code: int
    msg: str
    retry_after: str | None = None


class MinimaxFake(FakeUpstream):
    name: ClassVar[str] = "minimax"
    supports_delete: ClassVar[bool] = False
    renews_urls: ClassVar[bool] = True
    retry_after_header: ClassVar[bool] = False

    def __init__(self, api_key: str = "eyJhbGciOiJSUzI1NiJ9.minimax-test-key") -> None:
        self.api_key = api_key
        self.tasks: dict[str, Task] = {}
        self.file_ids: dict[str, str] = {}  # file id -> task id
        self._task_ids = itertools.count(106916112212032, 7919)
        self._file_ids = itertools.count(176844028768320, 104729)
        self.fail_code: tuple[int, str] | None = None
        self.file_id_before_success = "empty"
        self.lowercase_status = False
        self.primary_url = True
        self.backup_url = True
        self.broken_primary = False
        self.zero_bytes = False
        self.scripted: dict[str, list[Scripted]] = {"create": [], "query": [], "retrieve": []}
        self.signatures: set[str] = set()
        super().__init__()

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/video_generation", self._create)
        router.add_get("/v1/query/video_generation", self._query)
        router.add_get("/v1/files/retrieve", self._retrieve)

    def channel(self, base_url: str) -> dict[str, Any]:
        return {
            "name": "minimax",
            "provider": "minimax",
            "base_url": base_url,
            "api_key": self.api_key,
            "models": ["sora-2", *sorted(T2V | I2V), "S2V-01"],
            "model_map": {"sora-2": "MiniMax-Hailuo-02"},
        }

    # --- knobs ---------------------------------------------------------------------------

    def fail_next(
        self,
        op: str,
        *,
        code: int = 0,
        msg: str = "",
        status: int = 200,
        retry_after: str | None = None,
    ) -> None:
        """The next `op` ("create", "query", "retrieve") answers this instead."""
        self.scripted[op].append(Scripted(status, code, msg, retry_after))

    def contract_error(self, op: str, kind: str, retry_after: int | None = None) -> None:
        """The page's own bodies: MiniMax sends no Retry-After, so `retry_after` is not used."""
        code, msg = (2049, "invalid api key") if kind == "auth" else (1002, "rate limit exceeded")
        self.fail_next("create" if op == "submit" else "query", code=code, msg=msg)

    def forget_tasks(self) -> None:
        """Past retention: a query answers 2013 "task not found", a retrieve "file not found"."""
        self.tasks.clear()
        self.file_ids.clear()

    def expire_urls(self) -> None:
        """Every URL handed out so far stops working, as 9 h after its retrieve."""
        self.signatures.clear()
        super().expire_urls()

    def creates(self) -> list[Any]:
        return self.calls("/v1/video_generation", "POST")

    # --- answers ---------------------------------------------------------------------------

    @staticmethod
    def answer(code: int, msg: str, **fields: Any) -> web.Response:
        return web.json_response({**fields, "base_resp": {"status_code": code, "status_msg": msg}})

    def _canned(self, op: str, **fields: Any) -> web.Response | None:
        if not self.scripted[op]:
            return None
        s = self.scripted[op].pop(0)
        headers = {"Retry-After": s.retry_after} if s.retry_after else None
        if s.status != 200:  # a gateway in front of MiniMax: not a MiniMax body
            return web.Response(
                status=s.status,
                text=f"<html><body><h1>{s.status}</h1>gateway error</body></html>",
                content_type="text/html",
                headers=headers,
            )
        return web.json_response(
            {**fields, "base_resp": {"status_code": s.code, "status_msg": s.msg}}, headers=headers
        )

    def _auth_error(self, request: web.Request, **fields: Any) -> web.Response | None:
        given = request.headers.get("Authorization", "")
        if not given.startswith("Bearer ") or not given[7:].strip():
            return self.answer(
                1004, "login fail: missing API secret key in Authorization header", **fields
            )
        if given[7:] != self.api_key:
            return self.answer(2049, "invalid api key", **fields)
        return None

    # --- create ----------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        refused = self._auth_error(request, task_id="") or self._canned("create", task_id="")
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return self.answer(2013, "invalid params, body is not valid JSON", task_id="")
        try:
            mode, width, height = self._validate(body)
        except Invalid as exc:
            return self.answer(2013, f"invalid params, {exc}", task_id="")
        result = outcome(body.get("prompt", ""))
        if result == "reject":
            return self.answer(1026, "input new_sensitive", task_id="")
        task = Task(str(next(self._task_ids)), body, mode, result, width, height)
        self.tasks[task.id] = task
        return self.answer(0, "success", task_id=task.id)

    def _validate(self, body: Any) -> tuple[str, int, int]:
        if not isinstance(body, dict):
            raise Invalid("body must be an object")
        mode = "t2v"
        if "subject_reference" in body:
            mode = "s2v"
        elif "first_frame_image" in body:
            mode = "first_last" if "last_frame_image" in body else "i2v"
        elif "last_frame_image" in body:
            raise Invalid("last_frame_image needs first_frame_image")
        model = body.get("model")
        if not isinstance(model, str) or model not in MODES[mode]:
            raise Invalid(f"model {model} does not support {mode}")
        prompt = body.get("prompt")
        if mode == "t2v" and not prompt:
            raise Invalid("prompt is required")
        if prompt is not None and (not isinstance(prompt, str) or len(prompt) > 2000):
            raise Invalid("prompt must be a string of at most 2000 characters")
        for name in BOOLS:
            if name in body and not isinstance(body[name], bool):
                raise Invalid(f"{name} must be a boolean")
        if "fast_pretreatment" in body and model not in HAILUO:
            raise Invalid(f"fast_pretreatment is not supported by {model}")
        resolution = body.get("resolution", _resolutions(model, mode)[0])
        if resolution not in _resolutions(model, mode):
            raise Invalid(f"resolution {resolution} not supported by {model}")
        duration = body.get("duration", 6)
        if type(duration) is not int:
            raise Invalid("duration must be an integer")
        if duration not in _durations(model, resolution):
            raise Invalid(f"duration {duration} not supported at {resolution}")
        for name in ("first_frame_image", "last_frame_image"):
            if name in body:
                self._image(name, body[name])
        if mode == "s2v":
            refs = body["subject_reference"]
            if (
                not isinstance(refs, list)
                or len(refs) != 1
                or not isinstance(refs[0], dict)
                or refs[0].get("type") != "character"
                or not isinstance(refs[0].get("image"), list)
                or len(refs[0]["image"]) != 1
            ):
                raise Invalid("subject_reference must be one character with one image")
            self._image("subject_reference.image", refs[0]["image"][0])
        if "callback_url" in body and not isinstance(body["callback_url"], str):
            raise Invalid("callback_url must be a string")
        side = SIDES[resolution]
        shape = _png_size(body["first_frame_image"]) if "first_frame_image" in body else None
        w, h = shape or (16, 9)
        if w >= h:
            return mode, int(round(side * w / h / 2) * 2), side
        return mode, side, int(round(side * h / w / 2) * 2)

    @staticmethod
    def _image(name: str, value: Any) -> None:
        if not isinstance(value, str):
            raise Invalid(f"{name} must be a string")
        if value.startswith(("https://", "http://")):
            return
        match = DATA_URL.match(value)
        if match is None:  # raw base64 without its data: prefix lands here
            raise Invalid(f"{name} must be a URL or a data URL of a JPG, PNG or WebP image")
        try:
            base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise Invalid(f"{name} is not valid base64") from None

    # --- query -----------------------------------------------------------------------------

    async def _query(self, request: web.Request) -> web.Response:
        empty = {"task_id": "", "status": ""}
        refused = self._auth_error(request, **empty) or self._canned("query", **empty)
        if refused is not None:
            return refused
        task = self.tasks.get(request.query.get("task_id", ""))
        if task is None:
            return self.answer(2013, "invalid params, task not found", **empty)
        task.polls += 1
        fields: dict[str, Any] = {"task_id": task.id, "file_id": ""}
        if self.file_id_before_success == "missing":
            del fields["file_id"]
        code, msg = 0, "success"
        if task.polls < self.polls_to_finish:
            # Preparing, Queueing, then Processing; a short run shows only the last of them
            before = self.polls_to_finish - 1
            plan = STEPS[-before:] if before < len(STEPS) else STEPS
            status = plan[min(task.polls, len(plan)) - 1]
        elif task.outcome == "moderation":
            status, code, msg = "Fail", 1027, "output new_sensitive"
        elif task.outcome == "fail":
            status = "Fail"
            if self.fail_code is not None:
                code, msg = self.fail_code
        else:
            status = "Success"
            if not task.file_id:
                task.file_id = str(next(self._file_ids))
                self.file_ids[task.file_id] = task.id
            fields.update(file_id=task.file_id, video_width=task.width, video_height=task.height)
        fields["status"] = status.lower() if self.lowercase_status else status
        return self.answer(code, msg, **fields)

    # --- files -----------------------------------------------------------------------------

    async def _retrieve(self, request: web.Request) -> web.Response:
        refused = self._auth_error(request) or self._canned("retrieve")
        if refused is not None:
            return refused
        file_id = request.query.get("file_id", "")
        if not file_id.isdigit():
            return self.answer(2013, "invalid params, file_id")
        if file_id not in self.file_ids:
            return self.answer(2013, "invalid params, file not found")
        primary, backup = f"{file_id}-output.mp4", f"{file_id}-backup.mp4"
        self.files[primary] = self.files[backup] = VIDEO
        file = {
            "file_id": int(file_id),  # a number here, a string in the query answer
            "bytes": 0 if self.zero_bytes else len(VIDEO),
            "created_at": int(time.time()),
            "filename": "output_aigc.mp4",
            "purpose": "video_generation",
            "download_url": self._signed(primary) if self.primary_url else "",
        }
        if self.backup_url:
            file["backup_download_url"] = self._signed(backup)
        return self.answer(0, "success", file=file)

    def _signed(self, name: str) -> str:
        # OSS signatures are URL-encoded base64: a client that re-encodes them breaks them
        signature = base64.b64encode(secrets.token_bytes(15)).decode().replace("/", "+")
        signature = signature.replace("+", "%2B").replace("=", "%3D") + "%3D"
        self.signatures.add(signature)
        expires = int(time.time()) + 32400
        return self.cdn_url(
            name, f"Expires={expires}&OSSAccessKeyId=LTAI5tFake&Signature={signature}"
        )

    async def _serve_cdn(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        raw_query = request.raw_path.partition("?")[2]
        given = [p[10:] for p in raw_query.split("&") if p.startswith("Signature=")]
        refused = self.broken_primary and name.endswith("-output.mp4")
        if name != "video.mp4" and (refused or not any(s in self.signatures for s in given)):
            self.cdn_stats.requests += 1
            self.cdn_stats.auth_headers.append(request.headers.get("Authorization"))
            return web.Response(
                status=403,
                text="<Error><Code>AccessDenied</Code><Message>Request has expired</Message>"
                "</Error>",
                content_type="application/xml",
            )
        return await super()._serve_cdn(request)
