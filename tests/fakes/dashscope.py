"""A fake DashScope (Alibaba Cloud Model Studio) Wan video API (spec/providers/dashscope.md).

Routes under /api/v1: POST /services/aigc/video-generation/video-synthesis (create; refused
without `X-DashScope-Async: enable`), GET /tasks/{id} (query; HTTP 200 for every task state,
UNKNOWN for ids it does not know), POST /tasks/{id}/cancel (PENDING tasks only). Bearer API
key; errors are `{"request_id", "code", "message"}`. Results are signed OSS-style URLs on the fake
CDN (`?Expires=…&OSSAccessKeyId=…&Signature=…`), which answers 403 SignatureDoesNotMatch when the
query comes back altered.

One fake is one region: `region` "intl" (default) knows `wan2.1-…`, "cn" knows `wanx2.1-…`, "us"
knows only `-us` models. Times are zone-less local strings at `utc_offset_hours`.

Prompt markers beyond the shared ones: "#badsize" fails the task with the page's InvalidParameter
example, "#cancel" ends it CANCELED.

Contract hooks: DashScope deletes nothing (no delete endpoint; cancel is for PENDING tasks),
hands out the same signed URL on every query (`renews_urls` False), and its 429 carries no
Retry-After (the page shows none).

Wan 2.7 / 3.0 models (`wan2.7-…`, `wan3.0-…`, `happyhorse-…`) take the "new protocol" body,
checked by tests/fakes/dashscope_new.py. The fake then fetches every media URL on a loopback
host with a plain GET, as DashScope fetches inputs (a failure is 400 InvalidURL), and keeps
what it got in `fetched`; other hosts are taken as public and not fetched (tests have no
internet).

Knobs: `fail_next(op, case)` queues a canned answer (ERRORS) for the next "submit", "poll" or
"cancel"; `status_override` answers every known task with that status; `hidden_polls` answers
UNKNOWN to the first n queries of a new task (not visible yet); `usage_numbers` ("int", "str",
"float") sends usage numbers in that form; `expires_in_url` drops `Expires` from result URLs when
False; `accept_data_urls` takes `data:` URLs in new-protocol `media[].url` (refused by default,
the page documents none); `usage_extra` ("ratio" or "size") adds that key to new-protocol usage.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from yarl import URL

from tests.fakes import dashscope_new
from tests.fakes.base import VIDEO, FakeUpstream, outcome
from tests.fakes.dashscope_new import NEW_MODELS, NewModel

API_KEY = "sk-4b1f0c2d7e8a49f3b6c5d2e1f0a9b8c7"
MODEL = "wan2.6-t2v"
PREFIX = "/api/v1"
CREATE = PREFIX + "/services/aigc/video-generation/video-synthesis"

SIZES = {
    "480P": ("832*480", "480*832", "624*624"),
    "720P": ("1280*720", "720*1280", "960*960", "1088*832", "832*1088"),
    "1080P": ("1920*1080", "1080*1920", "1440*1440", "1632*1248", "1248*1632"),
}
ALL = ("480P", "720P", "1080P")
FLEX = tuple(range(2, 16))


@dataclass(frozen=True)
class Model:
    kind: str  # t2v, i2v, kf2v
    tiers: tuple[str, ...]
    durations: tuple[int, ...]
    generation: str


# The page's model table, by the international names; `wanx2.1-` is the China spelling.
MODELS: dict[str, Model] = {
    "wan2.6-t2v": Model("t2v", ("720P", "1080P"), FLEX, "2.6"),
    "wan2.6-t2v-us": Model("t2v", ("720P", "1080P"), (5, 10), "2.6"),
    "wan2.5-t2v-preview": Model("t2v", ALL, (5, 10), "2.5"),
    "wan2.2-t2v-plus": Model("t2v", ("480P", "1080P"), (5,), "2.2"),
    "wan2.1-t2v-turbo": Model("t2v", ("480P", "720P"), (5,), "2.1"),
    "wan2.1-t2v-plus": Model("t2v", ("720P",), (5,), "2.1"),
    "wan2.6-i2v": Model("i2v", ("720P", "1080P"), FLEX, "2.6"),
    "wan2.6-i2v-flash": Model("i2v", ("720P", "1080P"), FLEX, "2.6"),
    "wan2.6-i2v-us": Model("i2v", ("720P", "1080P"), (5, 10, 15), "2.6"),
    "wan2.6-i2v-flash-us": Model("i2v", ("720P", "1080P"), (5, 10, 15), "2.6"),
    "wan2.5-i2v-preview": Model("i2v", ALL, (5, 10), "2.5"),
    "wan2.2-i2v-flash": Model("i2v", ALL, (5,), "2.2"),
    "wan2.2-i2v-plus": Model("i2v", ("480P", "1080P"), (5,), "2.2"),
    "wan2.1-i2v-turbo": Model("i2v", ("480P", "720P"), (3, 4, 5), "2.1"),
    "wan2.1-i2v-plus": Model("i2v", ("720P",), (5,), "2.1"),
    "wan2.2-kf2v-flash": Model("kf2v", ALL, (5,), "2.2"),
    "wan2.1-kf2v-plus": Model("kf2v", ("720P",), (5,), "2.1"),
}
# i2v/kf2v models whose default resolution is not their top tier
DEFAULT_RESOLUTION = {
    "wan2.2-i2v-flash": "720P",
    "wan2.1-i2v-turbo": "720P",
    "wan2.2-kf2v-flash": "720P",
}
AUDIO_SWITCH = ("wan2.6-i2v-flash", "wan2.6-i2v-flash-us")
SEED_MAX = 2147483647

# case: (HTTP status, code, message), from the page's error table and code list
ERRORS: dict[str, tuple[int, str, str]] = {
    "auth": (401, "InvalidApiKey", "Invalid API-key provided."),
    "rate_limit": (429, "Throttling.RateQuota", "request rate limit exceeded"),
    "throttling": (429, "Throttling", "Requests throttling triggered."),
    "allocation": (429, "Throttling.AllocationQuota", "Allocated quota exceeded."),
    "bad_request": (400, "InvalidParameter", "Required parameter(s) missing or invalid"),
    "moderation": (400, "DataInspectionFailed", "input or output data may be inappropriate"),
    "arrearage": (400, "Arrearage", "account in arrears"),
    "model_access": (403, "Model.AccessDenied", "Model access denied."),
    "unpurchased": (403, "AccessDenied.Unpurchased", "Access to model denied."),
    "not_found": (404, "ModelNotFound", "Model not exist."),
    "internal": (500, "InternalError", "An internal error has occured, please try again later."),
}
SYNC_REFUSED = (403, "AccessDenied", "current user api does not support synchronous calls")
_DATA_URL = re.compile(r"^data:image/(jpeg|jpg|png|bmp|webp);base64,[A-Za-z0-9+/=]+$")
FAILURES = {
    "fail": ("InternalError", "An internal error has occured, please try again later."),
    "moderation": ("DataInspectionFailed", "input or output data may be inappropriate"),
    "badsize": ("InvalidParameter", "The size does not match the model"),
}


def request_id() -> str:
    return str(uuid.uuid4())


def ds_error(status: int, code: str, message: str) -> web.Response:
    body = {"request_id": request_id(), "code": code, "message": message}
    return web.json_response(body, status=status)


def bad(message: str, code: str = "InvalidParameter") -> web.Response:
    return ds_error(400, code, message)


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
    spec: Model | NewModel
    request: dict[str, Any]
    outcome: str
    submitted: float
    status: str = "PENDING"
    polls: int = 0
    scheduled: float | None = None
    ended: float | None = None


class DashScopeFake(FakeUpstream):
    name = "dashscope"
    supports_delete = False
    supports_cancel = True  # POST /tasks/{id}/cancel, a PENDING task only
    renews_urls = False
    retry_after_header = False

    def __init__(self, api_key: str = API_KEY, model: str = MODEL, region: str = "intl") -> None:
        self.api_key = api_key
        self.model = model
        self.region = region
        self.utc_offset_hours = 8.0
        self.tasks: dict[str, FakeTask] = {}
        self.answers: dict[str, list[Answer]] = {"submit": [], "poll": [], "cancel": []}
        self.signed: dict[str, str] = {}  # CDN object -> the exact query it was signed with
        self.status_override: str | None = None
        self.hidden_polls = 0
        self.usage_numbers = "int"
        self.expires_in_url = True
        self.accept_data_urls = False
        self.usage_extra: str | None = None
        self.fetched: dict[str, bytes] = {}  # media URL -> the bytes its GET answered
        super().__init__()

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post(CREATE, self._create)
        router.add_get(PREFIX + "/tasks/{id}", self._get)
        router.add_post(PREFIX + "/tasks/{id}/cancel", self._cancel)

    def channel(self, base_url: str, *, model: str | None = None, **extra: Any) -> dict[str, Any]:
        model = model or self.model
        # Wan runs text and image jobs on sibling models (-t2v / -i2v): a table by job shape
        mapped: str | dict[str, str] = model
        models = ["sora-2", model]
        if model.endswith("-t2v"):
            mapped = {"text": model, "image": model[: -len("-t2v")] + "-i2v"}
            models.append(mapped["image"])
        return {
            "name": "dashscope",
            "provider": "dashscope",
            "base_url": base_url,
            "api_key": self.api_key,
            "models": models,
            "model_map": {"sora-2": mapped},
            **extra,
        }

    # --- knobs ------------------------------------------------------------------------------

    def fail_next(self, op: str, case: str, *, retry_after: str | None = None) -> None:
        """Queue one canned answer for the next `op` ("submit", "poll", "cancel")."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        if case == "gateway":  # a load balancer's page, not the API's body
            answer = Answer(502, b"<html><body>502 Bad Gateway</body></html>", "text/html")
        elif case == "gateway_timeout":
            answer = Answer(504, b"<html><body>504 Gateway Time-out</body></html>", "text/html")
        elif case == "error_200":  # an error body on an HTTP 200
            _, code, message = ERRORS["internal"]
            body = {"request_id": request_id(), "code": code, "message": message}
            answer = Answer(200, json.dumps(body).encode())
        else:
            status, code, message = ERRORS[case]
            body = {"request_id": request_id(), "code": code, "message": message}
            answer = Answer(status, json.dumps(body).encode())
        answer.headers.update(headers)
        self.answers[op].append(answer)

    def contract_error(self, op: str, kind: str, retry_after: int | None = None) -> None:
        # the page's 401 InvalidApiKey and 429 Throttling.RateQuota bodies; no Retry-After
        assert kind in ("auth", "rate_limit"), kind
        self.fail_next(op, kind)

    def forget_tasks(self) -> None:
        self.tasks.clear()  # the query then answers UNKNOWN, as past the 24 h record

    def creates(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.calls(CREATE, "POST")]

    def local_time(self, at: float) -> str:
        zone = timezone(timedelta(hours=self.utc_offset_hours))
        stamp = datetime.fromtimestamp(at, zone)
        return stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{stamp.microsecond // 1000:03d}"

    # --- the API ----------------------------------------------------------------------------

    def _refused(self, request: web.Request, op: str) -> web.StreamResponse | None:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return ds_error(*ERRORS["auth"])
        if self.answers[op]:
            a = self.answers[op].pop(0)
            return web.Response(
                status=a.status, body=a.body, content_type=a.content_type, headers=a.headers
            )
        return None

    def spec(self, model: str) -> Model | NewModel | None:
        if dashscope_new.is_new(model):
            return NEW_MODELS.get(model)
        name = model
        if self.region == "us":
            return MODELS.get(name) if name.endswith("-us") else None
        if name.endswith("-us"):
            return None
        if name.startswith("wanx2.1-"):
            name = name.replace("wanx", "wan", 1) if self.region == "cn" else ""
        elif name.startswith("wan2.1-") and self.region == "cn":
            return None
        return MODELS.get(name)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request, "submit")
        if refused is not None:
            return refused
        if request.headers.get("X-DashScope-Async") != "enable":
            return ds_error(*SYNC_REFUSED)
        if not request.headers.get("Content-Type", "").startswith("application/json"):
            return bad("Content-Type must be application/json")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return bad("The request body is not valid JSON")
        if not isinstance(body, dict):
            return bad("The request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return bad("Required parameter 'model' missing", "BadRequest.EmptyModel")
        spec = self.spec(model)
        if spec is None:
            return ds_error(404, "ModelNotFound", "Model not exist.")
        if isinstance(spec, NewModel):
            checked = dashscope_new.validate(
                body, model, spec, request.headers, accept_data_urls=self.accept_data_urls
            )
            if isinstance(checked, tuple):
                return ds_error(*checked)
            for url in checked:
                if not await self._fetch(url):
                    return ds_error(400, "InvalidURL", "Download the media resource failed.")
        else:
            problem = _validate(body, model, spec, request.headers)
            if problem is not None:
                return problem
            audio = body["input"].get("audio_url")
            if isinstance(audio, str) and not await self._fetch(audio):
                return ds_error(400, "InvalidURL", "Download the media resource failed.")
        prompt = str(body["input"].get("prompt", ""))
        fate = outcome(prompt)
        if fate == "reject":
            return ds_error(*ERRORS["moderation"])
        for marker in ("#badsize", "#cancel"):
            if marker in prompt:
                fate = marker[1:]
        task = FakeTask(
            id=str(uuid.uuid4()),
            model=model,
            spec=spec,
            request=body,
            outcome=fate,
            submitted=time.time(),
        )
        self.tasks[task.id] = task
        return web.json_response(
            {"output": {"task_status": "PENDING", "task_id": task.id}, "request_id": request_id()}
        )

    async def _fetch(self, url: str) -> bool:
        """GET a media URL as DashScope would, when this sandbox can reach its host."""
        if URL(url).host not in ("127.0.0.1", "localhost", "::1"):
            return True  # a public host: taken as reachable
        try:
            async with aiohttp.ClientSession() as session, session.get(URL(url, encoded=True)) as r:
                if r.status != 200:
                    return False
                self.fetched[url] = await r.read()
        except aiohttp.ClientError:
            return False
        return True

    async def _get(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request, "poll")
        if refused is not None:
            return refused
        task_id = request.match_info["id"]
        task = self.tasks.get(task_id)
        if task is not None and self.hidden_polls > 0 and task.polls < self.hidden_polls:
            task.polls += 1
            task = None
        if task is None:  # unknown, expired or another account's: still a 200
            output = {"task_id": task_id, "task_status": "UNKNOWN"}
            return web.json_response({"request_id": request_id(), "output": output})
        self._advance(task)
        return web.json_response(self.render(task))

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request, "cancel")
        if refused is not None:
            return refused
        task = self.tasks.get(request.match_info["id"])
        if task is None or task.status != "PENDING":
            return ds_error(
                400,
                "UnsupportedOperation",
                "Failed to cancel the task, please confirm if the task is in PENDING status.",
            )
        task.status, task.ended = "CANCELED", time.time()
        return web.json_response({"request_id": request_id()})

    # --- task life --------------------------------------------------------------------------

    def _advance(self, task: FakeTask) -> None:
        if task.status in ("SUCCEEDED", "FAILED", "CANCELED"):
            return
        task.polls += 1
        finish_at = self.polls_to_finish + self.hidden_polls
        if task.polls >= finish_at:
            task.status = {"complete": "SUCCEEDED", "cancel": "CANCELED"}.get(
                task.outcome, "FAILED"
            )
            task.scheduled = task.scheduled or time.time()
            task.ended = time.time()
            if task.status == "SUCCEEDED":
                self._publish(task)
        elif task.polls == 1 + self.hidden_polls and finish_at > 2 + self.hidden_polls:
            task.status = "PENDING"
        else:
            task.status = "RUNNING"
            task.scheduled = task.scheduled or time.time()

    def _publish(self, task: FakeTask) -> None:
        name = f"{task.id}.mp4"
        self.files[name] = VIDEO
        assert task.ended is not None
        signature = quote(base64.b64encode(secrets.token_bytes(20)).decode(), safe="")
        query = f"OSSAccessKeyId=LTAI5tFakeOssKeyId&Signature={signature}"
        if self.expires_in_url:
            query = f"Expires={int(task.ended) + 86400}&" + query
        self.signed[name] = query

    def render(self, task: FakeTask) -> dict[str, Any]:
        status = self.status_override or task.status
        output: dict[str, Any] = {"task_id": task.id, "task_status": status}
        if not (status == "FAILED" and task.outcome == "moderation"):
            output["submit_time"] = self.local_time(task.submitted)
        if task.scheduled is not None and status in ("RUNNING", "SUCCEEDED"):
            output["scheduled_time"] = self.local_time(task.scheduled)
        body: dict[str, Any] = {"request_id": request_id(), "output": output}
        if status == "SUCCEEDED" and task.ended is not None:
            output["end_time"] = self.local_time(task.ended)
            prompt = task.request["input"].get("prompt", "")
            output["orig_prompt"] = prompt
            params = task.request.get("parameters", {})
            legacy = isinstance(task.spec, Model) and task.spec.generation != "2.6"
            if params.get("prompt_extend", True) and legacy:
                output["actual_prompt"] = f"{prompt}. Cinematic lighting, smooth camera motion."
            name = f"{task.id}.mp4"
            output["video_url"] = self.cdn_url(name, self.signed.get(name, ""))
            body["usage"] = self._usage(task)
        elif status == "FAILED":
            code, message = FAILURES.get(task.outcome, FAILURES["fail"])
            output.update(code=code, message=message)
        return body

    def _usage(self, task: FakeTask) -> dict[str, Any]:
        params = task.request.get("parameters", {})
        seconds = params.get("duration", 5)
        spec = task.spec
        if isinstance(spec, NewModel):
            return self._numbers(dashscope_new.usage(spec, params, self.usage_extra))
        if spec.kind == "t2v":
            size = params.get("size") or {"1080P": "1920*1080", "720P": "1280*720"}.get(
                spec.tiers[-1], "832*480"
            )
        else:
            default = DEFAULT_RESOLUTION.get(task.model.replace("wanx", "wan", 1), spec.tiers[-1])
            size = SIZES[params.get("resolution", default)][0]
        short = min(int(n) for n in size.split("*"))
        sr = {624: 480, 960: 720, 832: 720, 1440: 1080, 1248: 1080}.get(short, short)
        if spec.generation == "2.6":
            usage: dict[str, Any] = {
                "duration": seconds,
                "size": size,
                "input_video_duration": 0,
                "output_video_duration": seconds,
                "video_count": 1,
                "SR": sr,
            }
        elif spec.kind == "t2v":
            usage = {"video_duration": seconds, "video_ratio": size, "video_count": 1}
        else:
            usage = {"duration": seconds, "SR": sr, "video_count": 1}
        return self._numbers(usage)

    def _numbers(self, usage: dict[str, Any]) -> dict[str, Any]:
        form = {"str": str, "float": float}.get(self.usage_numbers)
        if form is not None:
            usage = {k: form(v) if isinstance(v, int) else v for k, v in usage.items()}
        return usage

    # --- the object store -------------------------------------------------------------------

    async def _serve_cdn(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        expected = self.signed.get(name)
        altered = request.raw_path.partition("?")[2] != expected
        if expected is not None and self.cdn.status is None and altered:
            self.cdn_stats.requests += 1
            return web.Response(
                status=403,
                text="<Error><Code>SignatureDoesNotMatch</Code></Error>",
                content_type="application/xml",
            )
        return await super()._serve_cdn(request)


def _validate(body: dict[str, Any], model: str, spec: Model, headers: Any) -> web.Response | None:
    """The create body's fields, checked as the page describes them."""
    inputs = body.get("input")
    if not isinstance(inputs, dict) or not inputs:
        return bad("Required input can't be empty", "BadRequest.EmptyInput")
    params = body.get("parameters", {})
    if not isinstance(params, dict):
        return bad("parameters must be an object")
    template = inputs.get("template")
    prompt = inputs.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        return bad("input.prompt must be a string")
    if spec.kind == "t2v" and not prompt:
        return bad("Required parameter(s) missing or invalid: input.prompt")
    negative = inputs.get("negative_prompt")
    if negative is not None and (not isinstance(negative, str) or len(negative) > 500):
        return bad("input.negative_prompt must be a string of at most 500 characters")
    images = {"i2v": ("img_url",), "kf2v": ("first_frame_url", "last_frame_url")}.get(spec.kind, ())
    for key in ("img_url", "first_frame_url", "last_frame_url"):
        value = inputs.get(key)
        if key not in images:
            if value is not None:
                return bad(f"input.{key} is not supported by {model}")
            continue
        if value is None:
            if key == "img_url" and template:
                continue
            return bad(f"Required parameter(s) missing or invalid: input.{key}")
        problem = _check_url(value, key, headers)
        if problem is not None:
            return problem
    audio = inputs.get("audio_url")
    if audio is not None:
        if spec.generation not in ("2.5", "2.6"):
            return bad(f"input.audio_url is not supported by {model}")
        problem = _check_url(audio, "audio_url", headers, image=False)
        if problem is not None:
            return problem
    return _check_parameters(params, model, spec)


def _check_url(value: Any, key: str, headers: Any, image: bool = True) -> web.Response | None:
    if not isinstance(value, str):
        return bad(f"input.{key} must be a string")
    if value.startswith("oss://"):
        if headers.get("X-DashScope-OssResourceResolve") != "enable":
            return bad(f"input.{key}: oss:// URLs need X-DashScope-OssResourceResolve: enable")
        return None
    if value.startswith(("https://", "http://")):
        return None
    if image and _DATA_URL.match(value):
        return None
    return ds_error(400, "InvalidURL", f"The provided URL in input.{key} is invalid")


def _check_parameters(params: dict[str, Any], model: str, spec: Model) -> web.Response | None:
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    for key in ("prompt_extend", "watermark", "audio"):
        if key in params and not isinstance(params[key], bool):
            return bad(f"parameters.{key} must be a boolean")
    if "size" in params:
        if spec.kind != "t2v":
            return bad(f"parameters.size is not supported by {model}; use resolution")
        if params["size"] not in {s for t in spec.tiers for s in SIZES[t]}:
            return bad("The size does not match the model")
    if "resolution" in params:
        if spec.kind == "t2v":
            return bad(f"parameters.resolution is not supported by {model}; use size")
        if params["resolution"] not in spec.tiers:
            return bad("The resolution does not match the model")
    if "duration" in params:
        duration = params["duration"]
        if not is_int(duration):
            return bad("parameters.duration must be an integer")
        if duration not in spec.durations:
            return bad(f"parameters.duration {duration} is not supported by {model}")
    if "shot_type" in params and (
        spec.generation != "2.6" or params["shot_type"] not in ("single", "multi")
    ):
        return bad("parameters.shot_type is invalid for this model")
    if "audio" in params and model not in AUDIO_SWITCH:
        return bad(f"parameters.audio is not supported by {model}")
    if "seed" in params and (not is_int(params["seed"]) or not 0 <= params["seed"] <= SEED_MAX):
        return bad("parameters.seed must be an integer from 0 to 2147483647")
    return None
