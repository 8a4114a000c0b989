"""A fake Volcengine Ark / BytePlus ModelArk content-generation API (spec/providers/seedance.md).

Routes under /api/v3: POST and GET /contents/generations/tasks (create, list), GET and DELETE
/contents/generations/tasks/{id}. Bearer API key; errors in the `{"error": {code, message, param,
type}}` envelope with `type` the HTTP reason word. Results are pre-signed TOS-style URLs on the
fake CDN, which answers 403 SignatureDoesNotMatch when the query comes back altered.

Prompt markers beyond the shared ones: "#expired" and "#cancelled" end the task in that status.

Contract hooks (tests/fakes/base.py): `contract_error` queues the page's 401 AuthenticationError
or 429 RateLimitExceeded.EndpointRPMExceeded envelope (the page shows no Retry-After header);
`forget_tasks` drops every task, as after the 7-day retention; DELETE removes a finished task's
record (`supports_delete`); a new query hands out the same signed URL, and the objects are cleaned
up after 24 h (`renews_urls` is False).

Knobs: `fail_next(op, case)` queues a canned answer (ERRORS) for the next "submit", "poll" or
"delete"; `status_override` answers every query with that status; the page's unconfirmed points:
`null_fields` (content/usage/seed as null rather than absent before success), `expired_error`
(an error object on expired tasks), `not_found_code` (the 404 code for an unknown id).
"""

from __future__ import annotations

import json
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.base import VIDEO, FakeUpstream, outcome
from tests.images import png

API_KEY = "ark-5f0c2d7e-8b1a-4e3f-9c6d-2a7b8e9f0a1b-3c4d5"
MODEL = "doubao-seedance-1-0-pro-250528"
PREFIX = "/api/v3"
LAST_FRAME = png(8, 8)

FAMILY = {
    "doubao-seedance-1-0-pro-250528": "1.0-pro",
    "seedance-1-0-pro-250528": "1.0-pro",
    "doubao-seedance-1-0-pro-fast-251015": "1.0-pro-fast",
    "seedance-1-0-pro-fast-251015": "1.0-pro-fast",
    "doubao-seedance-1-0-lite-t2v-250428": "1.0-lite-t2v",
    "doubao-seedance-1-0-lite-i2v-250428": "1.0-lite-i2v",
    "doubao-seedance-1-5-pro-251215": "1.5-pro",
    "seedance-1-5-pro-251215": "1.5-pro",
    "doubao-seedance-2-0-260128": "2.0",
    "doubao-seedance-2-0-fast-260128": "2.0-fast",
    "dreamina-seedance-2-0-260128": "2.0",
    "dreamina-seedance-2-0-fast-260128": "2.0-fast",
}
REASON = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    429: "TooManyRequests",
    500: "InternalServerError",
}
# case: (HTTP status, code, message, param), from the page's error table and code list
ERRORS: dict[str, tuple[int, str, str, str]] = {
    "auth": (401, "AuthenticationError", "api key missing or invalid", ""),
    "rate_limit": (429, "RateLimitExceeded.EndpointRPMExceeded", "rpm limit reached", ""),
    "tpm": (429, "RateLimitExceeded.EndpointTPMExceeded", "tpm limit reached", ""),
    "quota_429": (429, "QuotaExceeded", "quota exceeded", ""),
    "overloaded": (429, "ServerOverloaded", "server overloaded", ""),
    "set_limit": (429, "SetLimitExceeded", "set limit exceeded", ""),
    "bad_request": (400, "InvalidParameter", "duration out of range", "duration"),
    "moderation": (
        400,
        "InputTextSensitiveContentDetected",
        "input text may contain sensitive content",
        "",
    ),
    "overdue": (403, "AccountOverdueError", "account overdue", ""),
    "access_denied": (403, "AccessDenied", "access denied", ""),
    "model_not_open": (404, "ModelNotOpen", "model not activated", ""),
    "internal": (500, "InternalServiceError", "internal error, please retry", ""),
}
TERMINAL = frozenset({"succeeded", "failed", "expired", "cancelled"})
ROLES = {
    "image_url": (None, "first_frame", "last_frame", "reference_image"),
    "video_url": ("reference_video",),
    "audio_url": ("reference_audio",),
}


def ark_error(status: int, code: str, message: str, param: str = "") -> web.Response:
    body = {"error": {"code": code, "message": message, "param": param, "type": REASON[status]}}
    return web.json_response(body, status=status)


def bad(param: str, message: str, code: str = "InvalidParameter") -> web.Response:
    return ark_error(400, code, message, param)


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeTask:
    id: str
    model: str
    family: str
    request: dict[str, Any]
    outcome: str
    created_at: int
    updated_at: int
    status: str = "queued"
    polls: int = 0
    seed: int = 0


class SeedanceFake(FakeUpstream):
    name = "seedance"
    supports_delete = True
    supports_cancel = True  # the same DELETE, on a queued task
    renews_urls = False
    retry_after_header = False

    def __init__(self, api_key: str = API_KEY, model: str = MODEL) -> None:
        self.api_key = api_key
        self.model = model
        self.endpoints: dict[str, str] = {}  # ep-… id -> the model it serves
        self.tasks: dict[str, FakeTask] = {}
        self.answers: dict[str, list[Answer]] = {"submit": [], "poll": [], "delete": []}
        self.signed: dict[str, str] = {}  # CDN object -> the exact query it was signed with
        self.status_override: str | None = None
        self.null_fields = False
        self.expired_error = False
        self.not_found_code = "NotFound.TaskId"
        # Seedance downloads reference videos and audio from their URL at create; with this on,
        # the fake does too and keeps (url, status, content type, bytes) of each download
        self.fetch_media = False
        self.fetched: list[tuple[str, int, str, bytes]] = []
        super().__init__()

    def routes(self, router: web.UrlDispatcher) -> None:
        tasks = PREFIX + "/contents/generations/tasks"
        router.add_post(tasks, self._create)
        router.add_get(tasks, self._list)
        router.add_get(tasks + "/{id}", self._get)
        router.add_delete(tasks + "/{id}", self._delete)

    def channel(self, base_url: str, *, model: str | None = None, **extra: Any) -> dict[str, Any]:
        model = model or self.model
        return {
            "name": "seedance",
            "provider": "seedance",
            "base_url": base_url + PREFIX,
            "api_key": self.api_key,
            "models": ["sora-2", model],
            "model_map": {"sora-2": model},
            **extra,
        }

    # --- knobs ------------------------------------------------------------------------------

    def fail_next(self, op: str, case: str, *, retry_after: str | None = None) -> None:
        """Queue one canned answer for the next `op` ("submit", "poll", "delete")."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        if case == "gateway":  # a load balancer's page, not the API's envelope
            answer = Answer(502, b"<html><body>502 Bad Gateway</body></html>", "text/html")
        elif case == "error_200":  # an error envelope on an HTTP 200
            status, code, message, param = ERRORS["internal"]
            body = {"error": {"code": code, "message": message, "param": param, "type": "OK"}}
            answer = Answer(200, json.dumps(body).encode())
        else:
            status, code, message, param = ERRORS[case]
            body = {
                "error": {"code": code, "message": message, "param": param, "type": REASON[status]}
            }
            answer = Answer(status, json.dumps(body).encode())
        answer.headers.update(headers)
        self.answers[op].append(answer)

    def contract_error(self, op: str, kind: str, retry_after: int | None = None) -> None:
        """The page's native `kind` ("auth" or "rate_limit") for the next `op`; Ark's 429 carries
        no Retry-After on the page, so `retry_after` is not sent."""
        self.fail_next(op, kind)

    def forget_tasks(self) -> None:
        self.tasks.clear()

    def creates(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.calls("/contents/generations/tasks", "POST")]

    # --- the API ----------------------------------------------------------------------------

    def _refused(self, request: web.Request, op: str) -> web.StreamResponse | None:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return ark_error(401, *ERRORS["auth"][1:])
        if self.answers[op]:
            a = self.answers[op].pop(0)
            return web.Response(
                status=a.status, body=a.body, content_type=a.content_type, headers=a.headers
            )
        return None

    async def _create(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request, "submit")
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.read())
        except ValueError:
            return bad("", "the request body is not valid JSON")
        if not isinstance(body, dict):
            return bad("", "the request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return bad("model", "the parameter model is required", "MissingParameter")
        real = self.endpoints.get(model, model)
        family = FAMILY.get(real)
        if family is None:
            return ark_error(
                404, "InvalidEndpointOrModel.NotFound", "the model or endpoint does not exist", ""
            )
        problem = _validate(body, family)
        if problem is not None:
            return problem
        if self.fetch_media:
            for item in body["content"]:
                if item.get("type") in ("video_url", "audio_url"):
                    url = item[item["type"]]["url"]
                    async with aiohttp.ClientSession() as session, session.get(url) as got:
                        data = await got.read()
                        self.fetched.append((url, got.status, got.content_type, data))
                        if got.status != 200:
                            return bad("content", f"failed to download {item['type']}")
        prompt = next(i["text"] for i in body["content"] if i["type"] == "text")
        fate = outcome(prompt)
        if fate == "reject":
            return ark_error(400, *ERRORS["moderation"][1:])
        for marker in ("#expired", "#cancelled"):
            if marker in prompt:
                fate = marker[1:]
        now = int(time.time())
        alphabet = string.ascii_lowercase + string.digits
        task_id = "cgt-{}-{}".format(
            time.strftime("%Y%m%d%H%M%S", time.gmtime()),
            "".join(secrets.choice(alphabet) for _ in range(5)),
        )
        seed = body.get("seed", -1)
        self.tasks[task_id] = FakeTask(
            id=task_id,
            model=real,
            family=family,
            request=body,
            outcome=fate,
            created_at=now,
            updated_at=now,
            seed=seed if seed != -1 else secrets.randbelow(2**31),
        )
        return web.json_response({"id": task_id})

    async def _get(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request, "poll")
        if refused is not None:
            return refused
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return ark_error(404, self.not_found_code, "task not found", "id")
        self._advance(task)
        return web.json_response(self.render(task))

    async def _list(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request, "poll")
        if refused is not None:
            return refused
        q = request.query
        wanted_ids = set(q.getall("filter.task_ids", []))
        items = [
            t
            for t in self.tasks.values()
            if (not wanted_ids or t.id in wanted_ids)
            and q.get("filter.status", t.status) == t.status
            and q.get("filter.model", t.model) == t.model
        ]
        page, size = int(q.get("page_num", "1")), int(q.get("page_size", "20"))
        shown = items[(page - 1) * size : page * size]
        return web.json_response({"items": [self.render(t) for t in shown], "total": len(items)})

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request, "delete")
        if refused is not None:
            return refused
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return ark_error(404, self.not_found_code, "task not found", "id")
        if task.status == "queued":
            task.status, task.updated_at = "cancelled", int(time.time())
        elif task.status in ("running", "cancelled"):
            return bad("id", f"a task in status {task.status} cannot be cancelled or deleted")
        else:
            del self.tasks[task.id]
        return web.Response(status=200)

    # --- task life --------------------------------------------------------------------------

    def _advance(self, task: FakeTask) -> None:
        if task.status in TERMINAL:
            return
        task.polls += 1
        if task.polls >= self.polls_to_finish:
            status = {
                "complete": "succeeded",
                "fail": "failed",
                "moderation": "failed",
                "expired": "expired",
                "cancelled": "cancelled",
            }[task.outcome]
            if status == "succeeded":
                self._publish(task)
        elif task.polls == 1 and self.polls_to_finish > 2:
            status = "queued"
        else:
            status = "running"
        if status != task.status:
            task.status, task.updated_at = status, int(time.time())

    def _publish(self, task: FakeTask) -> None:
        self.files[f"{task.id}.mp4"] = VIDEO
        self._sign(f"{task.id}.mp4")
        if task.request.get("return_last_frame"):
            self.files[f"{task.id}_last_frame.png"] = LAST_FRAME
            self._sign(f"{task.id}_last_frame.png")

    def _sign(self, name: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.signed[name] = (
            "X-Tos-Algorithm=TOS4-HMAC-SHA256"
            f"&X-Tos-Credential=AKLTfake%2F{stamp[:8]}%2Fcn-beijing%2Ftos%2Frequest"
            f"&X-Tos-Date={stamp}&X-Tos-Expires=86400"
            f"&X-Tos-Signature={secrets.token_hex(32)}&X-Tos-SignedHeaders=host"
        )

    def render(self, task: FakeTask) -> dict[str, Any]:
        req = task.request
        status = self.status_override or task.status
        out: dict[str, Any] = {
            "id": task.id,
            "model": task.model,
            "status": status,
            "error": None,
            "created_at": task.created_at,
            "updated_at": task.updated_at,
            "service_tier": req.get("service_tier", "default"),
            "execution_expires_after": req.get("execution_expires_after", 172800),
        }
        if status == "succeeded":
            out.update(self._result(task))
        elif self.null_fields:
            out.update(content=None, usage=None, seed=None)
        if status == "failed":
            code, message = {
                "moderation": (
                    "OutputVideoSensitiveContentDetected",
                    "output video may contain sensitive content",
                ),
            }.get(task.outcome, ("InternalServiceError", "internal error, please retry"))
            out["error"] = {"code": code, "message": message}
        if status == "expired" and self.expired_error:
            out["error"] = {"code": "TaskExpired", "message": "task expired"}
        return out

    def _result(self, task: FakeTask) -> dict[str, Any]:
        req, family = task.request, task.family
        video = f"{task.id}.mp4"
        content = {"video_url": self.cdn_url(video, self.signed[video])}
        if req.get("return_last_frame"):
            frame = f"{task.id}_last_frame.png"
            content["last_frame_url"] = self.cdn_url(frame, self.signed[frame])
        ratio = req.get("ratio", "adaptive")
        default_res = "1080p" if family in ("1.0-pro", "1.0-pro-fast") else "720p"
        out: dict[str, Any] = {
            "content": content,
            "seed": task.seed,
            "resolution": req.get("resolution", default_res),
            "ratio": "16:9" if ratio == "adaptive" else ratio,  # the actual one
            "framespersecond": 24,
        }
        if "frames" in req:
            out["frames"] = req["frames"]
            seconds = req["frames"] / 24
        else:
            out["duration"] = req.get("duration", 5) if req.get("duration", 5) != -1 else 8
            seconds = out["duration"]
        out["usage"] = {
            "completion_tokens": int(seconds * 21600),
            "total_tokens": int(seconds * 21600),
        }
        if family.startswith(("1.5", "2.0")):
            out["generate_audio"] = req.get("generate_audio", True)
        return out

    # --- the object store -------------------------------------------------------------------

    async def _serve_cdn(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        expected = self.signed.get(name)
        if expected is not None and self.cdn.status is None:
            if request.raw_path.partition("?")[2] != expected:
                self.cdn_stats.requests += 1
                return web.Response(
                    status=403,
                    text="<Error><Code>SignatureDoesNotMatch</Code></Error>",
                    content_type="application/xml",
                )
            if name.endswith(".png"):  # the shared CDN serves every file as one type
                self.cdn_stats.requests += 1
                self.cdn_stats.auth_headers.append(request.headers.get("Authorization"))
                return web.Response(body=self.files[name], content_type="image/png")
        return await super()._serve_cdn(request)


def _validate(body: dict[str, Any], family: str) -> web.Response | None:
    """The create body's fields, checked as the page describes them."""
    gen = family[:3]
    content = body.get("content")
    if not isinstance(content, list) or not content:
        return bad("content", "the parameter content is required", "MissingParameter")
    counts: dict[str, int] = {}
    roles: list[Any] = []
    for i, item in enumerate(content):
        kind = item.get("type") if isinstance(item, dict) else None
        where = f"content[{i}]"
        if kind == "text":
            if not isinstance(item.get("text"), str):
                return bad(where + ".text", "text must be a string")
        elif kind in ROLES:
            ref = item.get(kind)
            if not isinstance(ref, dict) or not isinstance(ref.get("url"), str):
                return bad(f"{where}.{kind}.url", f"{kind}.url is required", "MissingParameter")
            if item.get("role") not in ROLES[kind]:
                return bad(where + ".role", f"invalid role {item.get('role')!r} for {kind}")
            if kind == "image_url":
                url = ref["url"]
                if not url.startswith(("https://", "http://", "data:image/", "asset://")):
                    return bad(f"{where}.image_url.url", "invalid image url")
                roles.append(item.get("role"))
            elif gen != "2.0":
                return bad(where + ".type", f"{kind} is only supported by 2.0 models")
            elif not ref["url"].startswith(("https://", "http://", "asset://")):
                # reference videos and audio are downloaded by URL; no data: URLs
                return bad(f"{where}.{kind}.url", f"invalid {kind.split('_')[0]} url")
        elif kind != "draft_task":
            return bad(where + ".type", f"invalid content type {kind!r}")
        counts[str(kind)] = counts.get(str(kind), 0) + 1
    if counts.get("text", 0) > 1:
        return bad("content", "only one text item is allowed")
    if counts.get("video_url", 0) > 3 or counts.get("audio_url", 0) > 3:
        return bad("content", "at most 3 reference videos and 3 reference audios")
    if counts.get("audio_url") and not (counts.get("image_url") or counts.get("video_url")):
        return bad("content", "reference audio requires a reference image or video")
    reference = "reference_image" in roles
    problem = _check_images(roles, family)
    if problem is not None:
        return problem
    return _check_fields(body, family, reference)


def _check_images(roles: list[Any], family: str) -> web.Response | None:
    if not roles:
        return None
    if family == "1.0-lite-t2v":
        return bad("content", "this model does not accept images")
    frames = [r for r in roles if r != "reference_image"]
    if frames and len(frames) < len(roles):
        return bad("content", "first frame, first-last frame and reference modes cannot be mixed")
    if len(frames) > 1 and (None in frames or sorted(frames) != ["first_frame", "last_frame"]):
        return bad("content", "first-last frame mode requires roles first_frame and last_frame")
    if frames == ["last_frame"]:
        return bad("content", "last_frame requires first_frame")
    limit = {"2.0": 9, "2.0-fast": 9, "1.0-lite-i2v": 4}.get(family, 0)
    if len(roles) - len(frames) > limit:
        return bad("content", f"at most {limit} reference images for this model")
    return None


def _check_fields(body: dict[str, Any], family: str, reference: bool) -> web.Response | None:
    gen = family[:3]

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    for key in ("camera_fixed", "watermark", "generate_audio", "return_last_frame", "draft"):
        if key in body and not isinstance(body[key], bool):
            return bad(key, f"{key} must be a boolean")
    if "resolution" in body:
        if body["resolution"] not in ("480p", "720p", "1080p"):
            return bad("resolution", "invalid resolution")
        if family == "2.0-fast" or (reference and family.startswith("1.0-lite")):
            return bad("resolution", "resolution is not supported in this mode")
    if "ratio" in body and body["ratio"] not in (
        "16:9",
        "4:3",
        "1:1",
        "3:4",
        "9:16",
        "21:9",
        "adaptive",
    ):
        return bad("ratio", "invalid ratio")
    if "duration" in body:
        low, high = {"1.0": (2, 12), "1.5": (4, 12)}.get(gen, (4, 15))
        d = body["duration"]
        if not is_int(d) or not (low <= d <= high or (d == -1 and gen != "1.0")):
            return bad("duration", "duration out of range")
    if "frames" in body:
        f = body["frames"]
        if gen != "1.0" or not is_int(f) or not 29 <= f <= 289 or (f - 25) % 4:
            return bad("frames", "invalid frames")
    if "seed" in body and (not is_int(body["seed"]) or not -1 <= body["seed"] <= 2**32 - 1):
        return bad("seed", "seed out of range")
    if "camera_fixed" in body and (gen == "2.0" or reference):
        return bad("camera_fixed", "camera_fixed is not supported in this mode")
    if "generate_audio" in body and gen == "1.0":
        return bad("generate_audio", "generate_audio is not supported by this model")
    tier = body.get("service_tier", "default")
    if tier not in ("default", "flex") or (tier == "flex" and gen == "2.0"):
        return bad("service_tier", "invalid service_tier")
    expiry = body.get("execution_expires_after", 172800)
    if not is_int(expiry) or not 3600 <= expiry <= 259200:
        return bad("execution_expires_after", "execution_expires_after out of range")
    return None
