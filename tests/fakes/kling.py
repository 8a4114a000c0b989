"""A fake Kling API (shared/spec/providers/kling.md): JWT auth checked over the received bytes in
the page's order (1001, 1002, 1003, 1004, then 1000), text2video and image2video families with
their field rules, the `{code, message, request_id, data}` envelope, and results on the CDN.

A task answers `submitted` on its first query, `processing` until `polls_to_finish`, then ends by
its prompt marker. Knobs:

    fail_next(where, status, code, message, headers)   the next submit/query answers this error
    pending_result = "missing" | "empty"   task_result absent, or {"videos": []}, before success
    next_statuses                           odd task_status strings to answer first (one per query)
    keys                                    AccessKey -> SecretKey pairs it accepts
    clock                                   its idea of now (Unix seconds), for nbf/exp
    require_typ                             refuse tokens without typ: "JWT" (unconfirmed: off)
    not_found_status                        HTTP status of the 1203 answer (unconfirmed: 404)

The contract hooks (tests/fakes/base.py) answer the page's bodies: refused credentials are
401/1000, a rate limit is 429/1302 without Retry-After (the page shows none); Kling has no delete
endpoint, and a result URL is fixed, so an expired one is not renewed by a query.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from tests.fakes.base import VIDEO, FakeUpstream, outcome

ACCESS_KEY = "AKFAKEKLING0000"
SECRET_KEY = "SKFAKEKLING0000-secret"

TEXT2VIDEO_MODELS = frozenset(
    {
        "kling-v1",
        "kling-v1-6",
        "kling-v2-master",
        "kling-v2-1-master",
        "kling-v2-5-turbo",
        "kling-v2-6",
        "kling-v3",
    }
)
IMAGE2VIDEO_MODELS = TEXT2VIDEO_MODELS | {"kling-v1-5", "kling-v2-1"}
SOUND_MODELS = frozenset({"kling-v2-6", "kling-v3"})
CAMERA_TYPES = frozenset(
    {"simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward"}
)
CAMERA_AXES = ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")
FAIL_MESSAGES = {
    "fail": "generation failed, please try again",
    "moderation": "content risk control triggered",
}
MAX_IMAGE_BYTES = 10 * 1024 * 1024


@dataclass
class Fault:
    status: int
    code: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeTask:
    task_id: str
    family: str
    model: str
    body: dict[str, Any]
    outcome: str
    created_ms: int
    updated_ms: int
    external_id: str = ""
    queries: int = 0
    status: str = "submitted"
    video_id: str = ""


def _b64url_decode(part: str) -> bytes:
    if not part or any(c.isspace() for c in part):
        raise ValueError("empty or spaced segment")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _is_image(data: bytes) -> bool:
    return data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"))


class FakeKling(FakeUpstream):
    name: ClassVar[str] = "kling"
    polls_to_finish = 3
    supports_delete: ClassVar[bool] = False  # the page has no delete endpoint
    renews_urls: ClassVar[bool] = False  # the CDN URL is fixed; a query hands out the same one
    retry_after_header: ClassVar[bool] = False  # the page's 429 bodies carry no Retry-After
    families: ClassVar[tuple[str, ...]] = ("text2video", "image2video")

    def __init__(self) -> None:
        self.keys: dict[str, str] = {ACCESS_KEY: SECRET_KEY}
        self.clock: Callable[[], float] = time.time
        self.require_typ = False
        self.not_found_status = 404
        self.pending_result = "missing"
        self.next_statuses: list[str] = []
        self.faults: dict[str, list[Fault]] = {"submit": [], "query": []}
        self.tasks: dict[str, FakeTask] = {}
        self.claims: list[dict[str, Any]] = []  # payloads of the tokens it accepted
        self.tokens: list[str] = []
        self._ids = itertools.count(867283741759111202)
        super().__init__()

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/videos/{family}", self._create)
        router.add_get("/v1/videos/{family}", self._list)
        router.add_get("/v1/videos/{family}/{task_id}", self._query)

    def channel(self, base_url: str) -> dict[str, Any]:
        return {
            "name": "kling",
            "provider": "kling",
            "base_url": base_url,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "models": [
                "sora-2",
                "kling-v2-1-master",
                "kling-v3",
                "kling-v2-6",
                "kling-v2-1",
                "kling-v1",
            ],
            "model_map": {"sora-2": "kling-v2-1-master"},
        }

    # --- knobs ------------------------------------------------------------------------

    def fail_next(
        self,
        where: str,
        status: int,
        code: int,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.faults[where].append(Fault(status, code, message, dict(headers or {})))

    def contract_error(self, op: str, kind: str, retry_after: int | None = None) -> None:
        """The page's bodies: 401/1000 for refused credentials, 429/1302 for the rate limit."""
        where = "query" if op == "poll" else op
        if kind == "auth":
            self.fail_next(where, 401, 1000, "authentication failed")
        elif kind == "rate_limit":
            self.fail_next(where, 429, 1302, "request rate over limit")
        else:
            raise ValueError(f"no contract error {kind!r}")

    def forget_tasks(self) -> None:
        self.tasks.clear()

    def creates(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.requests if r.method == "POST"]

    # --- envelope ---------------------------------------------------------------------

    @staticmethod
    def error(
        status: int, code: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        body = {"code": code, "message": message, "request_id": str(uuid.uuid4())}
        return web.json_response(body, status=status, headers=headers)

    @staticmethod
    def ok(data: Any) -> web.Response:
        return web.json_response(
            {"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": data}
        )

    def _fault(self, where: str) -> web.Response | None:
        if not self.faults[where]:
            return None
        fault = self.faults[where].pop(0)
        return self.error(fault.status, fault.code, fault.message, fault.headers)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- auth -------------------------------------------------------------------------

    def _auth(self, request: web.Request) -> web.Response | None:
        """The page's checks, in its order; the signature is verified over the bytes sent."""
        header = request.headers.get("Authorization", "")
        if not header.strip():
            return self.error(401, 1001, "authorization is empty")
        invalid = self.error(401, 1002, "authorization is invalid")
        if not header.startswith("Bearer "):
            return invalid
        token = header[len("Bearer ") :]
        parts = token.split(".")
        if len(parts) != 3:
            return invalid
        try:
            head = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return invalid
        if not isinstance(head, dict) or not isinstance(claims, dict):
            return invalid
        if head.get("alg") != "HS256" or (self.require_typ and head.get("typ") != "JWT"):
            return invalid
        nbf, exp = claims.get("nbf", 0), claims.get("exp")
        if not isinstance(nbf, int | float) or not isinstance(exp, int | float):
            return invalid
        now = self.clock()
        if nbf > now + 5:
            return self.error(401, 1003, "authorization is not yet valid")
        if exp <= now:
            return self.error(401, 1004, "authorization expired")
        secret = self.keys.get(claims.get("iss"))
        if secret is None:
            return self.error(401, 1000, "authentication failed")
        signing_input = (parts[0] + "." + parts[1]).encode("ascii")
        expected = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            return self.error(401, 1000, "authentication failed")
        self.claims.append(claims)
        self.tokens.append(token)
        return None

    # --- create -----------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        family = request.match_info["family"]
        refused = self._auth(request) or self._fault("submit")
        if refused is not None:
            return refused
        if family not in self.families:
            return self.error(404, 1202, "request method is invalid")
        if request.content_type != "application/json":
            return self.error(400, 1200, "invalid request: Content-Type must be application/json")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self.error(400, 1200, "invalid request: body is not valid JSON")
        if not isinstance(body, dict):
            return self.error(400, 1200, "invalid request: body must be an object")
        # the legacy `model` field is not read: without model_name Kling uses kling-v1
        model = body.get("model_name", "kling-v1")
        if not isinstance(model, str) or not model:
            return self.error(400, 1201, "model_name: invalid value")
        if model not in IMAGE2VIDEO_MODELS:
            return self.error(404, 1203, "model not found")
        problem = self._check_fields(family, model, body)
        if problem is not None:
            return self.error(400, 1201, problem)
        prompt = body.get("prompt") or ""
        result = outcome(prompt)
        if result == "reject":
            return self.error(400, 1301, "content security policy triggered")
        external = body.get("external_task_id") or ""
        if external and any(t.external_id == external for t in self.tasks.values()):
            return self.error(400, 1201, "external_task_id: duplicate value")
        now = self._now_ms()
        task = FakeTask(
            task_id=str(next(self._ids)),
            family=family,
            model=model,
            body=body,
            outcome=result,
            created_ms=now,
            updated_ms=now,
            external_id=external,
        )
        self.tasks[task.task_id] = task
        return self.ok(
            {
                "task_id": task.task_id,
                "task_status": "submitted",
                "task_info": {"external_task_id": external} if external else {},
                "created_at": now,
                "updated_at": now,
            }
        )

    def _check_fields(self, family: str, model: str, body: dict[str, Any]) -> str | None:
        """The first field Kling would refuse, as its 1201 message; None when all are fine."""
        if family == "text2video" and model not in TEXT2VIDEO_MODELS:
            return "model_name: invalid value"
        prompt = body.get("prompt")
        if family == "text2video" and (not isinstance(prompt, str) or not prompt.strip()):
            return "prompt: invalid value"
        for name in ("prompt", "negative_prompt"):
            text = body.get(name)
            if text is not None and (not isinstance(text, str) or len(text) > 2500):
                return f"{name}: invalid value"
        cfg = body.get("cfg_scale")
        if (
            cfg is not None
            and not model.startswith("kling-v2")
            and (isinstance(cfg, bool) or not isinstance(cfg, int | float) or not 0 <= cfg <= 1)
        ):
            return "cfg_scale: invalid value"
        if body.get("mode", "std") not in ("std", "pro"):
            return "mode: invalid value"
        if "sound" in body and (body["sound"] not in ("on", "off") or model not in SOUND_MODELS):
            return "sound: invalid value"
        allowed = [str(s) for s in range(3, 16)] if model == "kling-v3" else ["5", "10"]
        if body.get("duration", "5") not in allowed:  # a JSON number is never in the list
            return "duration: invalid value"
        if family == "text2video" and body.get("aspect_ratio", "16:9") not in (
            "16:9",
            "9:16",
            "1:1",
        ):
            return "aspect_ratio: invalid value"
        for name, check in (("camera_control", _camera_ok), ("watermark_info", _watermark_ok)):
            if name in body and not check(body[name]):
                return f"{name}: invalid value"
        for name in ("callback_url", "external_task_id"):
            if name in body and not isinstance(body[name], str):
                return f"{name}: invalid value"
        if family == "image2video":
            return _check_images(body)
        return None

    # --- query ------------------------------------------------------------------------

    async def _query(self, request: web.Request) -> web.Response:
        refused = self._auth(request) or self._fault("query")
        if refused is not None:
            return refused
        family, wanted = request.match_info["family"], request.match_info["task_id"]
        task = next(
            (
                t
                for t in self.tasks.values()
                if t.family == family and wanted in (t.task_id, t.external_id)
            ),
            None,
        )
        if task is None:
            return self.error(self.not_found_status, 1203, "task not found")
        if self.next_statuses:
            return self.ok({**self._view(task), "task_status": self.next_statuses.pop(0)})
        self._advance(task)
        return self.ok(self._view(task))

    async def _list(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        for name, top in (("pageNum", 1000), ("pageSize", 500)):
            raw = request.query.get(name, "1" if name == "pageNum" else "30")
            if not raw.isdigit() or not 1 <= int(raw) <= top:
                return self.error(400, 1201, f"{name}: invalid value")
        size = int(request.query.get("pageSize", "30"))
        page = int(request.query.get("pageNum", "1"))
        family = request.match_info["family"]
        mine = [t for t in self.tasks.values() if t.family == family][::-1]
        return self.ok([self._view(t) for t in mine[(page - 1) * size : page * size]])

    def _advance(self, task: FakeTask) -> None:
        if task.status in ("succeed", "failed"):
            return
        task.queries += 1
        if task.queries >= self.polls_to_finish:
            task.status = "failed" if task.outcome in FAIL_MESSAGES else "succeed"
            if task.status == "succeed":
                task.video_id = str(int(task.task_id) + 259_000_000)
                self.files[f"{task.video_id}.mp4"] = VIDEO
        elif task.queries > 1:
            task.status = "processing"
        task.updated_ms = self._now_ms()

    def _view(self, task: FakeTask) -> dict[str, Any]:
        data: dict[str, Any] = {
            "task_id": task.task_id,
            "task_status": task.status,
            "task_status_msg": FAIL_MESSAGES.get(task.outcome, "")
            if task.status == "failed"
            else "",
            "task_info": {"external_task_id": task.external_id}
            if task.status == "succeed" or task.external_id
            else {},
            "created_at": task.created_ms,
            "updated_at": task.updated_ms,
        }
        if task.status == "succeed":
            watermark = bool((task.body.get("watermark_info") or {}).get("enabled"))
            data["task_result"] = {
                "videos": [
                    {
                        "id": task.video_id,
                        "url": self.cdn_url(f"{task.video_id}.mp4"),
                        "watermark_url": self.cdn_url(f"{task.video_id}-wm.mp4")
                        if watermark
                        else "",
                        "duration": f"{task.body.get('duration', '5')}.042",
                    }
                ]
            }
            data["watermark_info"] = {"enabled": watermark}
            data["final_unit_deduction"] = "1"
        elif task.status != "failed" and self.pending_result == "empty":
            data["task_result"] = {"videos": []}
        return data


def _camera_ok(value: Any) -> bool:
    if not isinstance(value, dict) or value.get("type") not in CAMERA_TYPES:
        return False
    config = value.get("config")
    if value["type"] != "simple":
        return config is None
    if not isinstance(config, dict) or set(config) - set(CAMERA_AXES):
        return False
    numbers = list(config.values())
    if any(
        isinstance(n, bool) or not isinstance(n, int | float) or not -10 <= n <= 10 for n in numbers
    ):
        return False
    return sum(1 for n in numbers if n != 0) <= 1


def _watermark_ok(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("enabled"), bool)


def _check_images(body: dict[str, Any]) -> str | None:
    if not body.get("image") and not body.get("image_tail"):
        return "image: image or image_tail is required"
    for name in ("image", "image_tail"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or value.startswith("data:"):
            return f"{name}: invalid value"
        if value.startswith(("http://", "https://")):
            continue
        try:
            data = base64.b64decode(value, validate=True)
        except (ValueError, binascii.Error):
            return f"{name}: invalid value"
        if len(data) > MAX_IMAGE_BYTES or not _is_image(data):
            return f"{name}: invalid value"
    if "image_tail" in body and {"camera_control", "static_mask", "dynamic_masks"} & set(body):
        return "image_tail: cannot be used with camera_control, static_mask or dynamic_masks"
    return None
