"""A fake Volcengine visual API serving Jimeng's two actions (spec/providers/jimeng.md).

`POST /?Action=CVSync2AsyncSubmitTask&Version=2022-08-31` and `...CVSync2AsyncGetResult...`, each
signed with HMAC-SHA256 V4. The fake checks the signature the way the gateway does, from what it
received: it rebuilds the canonical request from the method, path, query and the listed headers,
hashes the body it got, and checks X-Content-Sha256, the scope and the X-Date (±15 min). Gateway
failures answer the `ResponseMetadata.Error` envelope; the service answers `{code, message, data,
request_id, status, time_elapsed}` with code 10000 for success.

Prompt markers beyond the shared ones: "#empty" ends `done` with code 10000 and no video_url,
"#expired" ends as `expired`.

Contract hooks (tests/fakes/base.py): `contract_error` answers the page's own errors (auth: the
gateway's 401 SignatureDoesNotMatch; rate limit: HTTP 429 with business code 50429, and no
Retry-After, which the page never shows); `forget_tasks` makes every task read `not_found`.
There is no delete; each get-result of a finished task signs its URL afresh (renews_urls).

Knobs: `fail_next(op, case)` queues a canned answer (GATEWAY, BUSINESS, or "gateway"/"timeout"
HTML pages) for the next "submit" or "poll"; `clock` and `clock_offset` set the fake's time (URL
expiry, the 12 h record, the X-Date window); `denied` holds access keys without Jimeng permission
(they get 50400).
The page's unconfirmed points: `error_data` ("done": failures carry `{"status": "done",
"video_url": ""}`; "null": `data: null`), `error_http_200` (task failures on HTTP 200 instead of
each code's own status), `echo_status` (business bodies repeat `code` as `status`),
`expired_status` (what a task past its 12 h reads as: "not_found" or "expired").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tests.fakes.base import VIDEO, FakeUpstream, outcome

ACCESS_KEY = "AKLTNmYzZjQ3ZDJhZmI0NGU0OGJlZDRiNmU1ZTFhZWQxYjM"
SECRET_KEY = "TVdVNFpXTTJNVFEwTWpaaU5HSmpPRGd6WlRJMk9HRXdNV1pqTVRNMU5tUQ=="
FAMILY = "jimeng-3.0"
VERSION = "2022-08-31"
SUBMIT, GET_RESULT = "CVSync2AsyncSubmitTask", "CVSync2AsyncGetResult"
REGION, SERVICE = "cn-north-1", "cv"
RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
MAX_IMAGE = int(4.7 * 1024 * 1024)
RECORD_S = 12 * 3600
URL_S = 3600

# req_key: (image counts it takes, aspect ratios of its text-to-video mode)
KEYS: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
    "jimeng_vgfm_t2v_l20": ((0,), (*RATIOS, "9:21")),
    "jimeng_vgfm_i2v_l20": ((1,), ()),
    "jimeng_t2v_v30": ((0,), RATIOS),
    "jimeng_i2v_first_v30": ((1,), ()),
    "jimeng_i2v_first_tail_v30": ((2,), ()),
    "jimeng_i2v_recamera_v30": ((1,), ()),
    "jimeng_t2v_v30_1080p": ((0,), RATIOS),
    "jimeng_i2v_first_v30_1080": ((1,), ()),
    "jimeng_i2v_first_tail_v30_1080": ((2,), ()),
    "jimeng_ti2v_v30_pro": ((0, 1), RATIOS),
}
# case: (HTTP status, CodeN, Code, Message)
GATEWAY: dict[str, tuple[int, int, str, str]] = {
    "missing_parameter": (400, 100002, "MissingParameter", "Action or Version is missing"),
    "missing_token": (401, 100003, "MissingAuthenticationToken", "missing authentication token"),
    "missing_request_info": (400, 100004, "MissingRequestInfo", "missing request info"),
    "missing_signature": (401, 100005, "MissingSignature", "missing signature"),
    "timestamp": (400, 100006, "InvalidTimestamp", "the X-Date is out of range"),
    "service_not_found": (404, 100007, "ServiceNotFound", "service not found"),
    "invalid_action": (404, 100008, "InvalidActionOrVersion", "invalid action or version"),
    "invalid_key": (401, 100009, "InvalidAccessKey", "invalid access key"),
    "signature": (401, 100010, "SignatureDoesNotMatch", "signature mismatch"),
    "lack_policy": (403, 100012, "LackPolicy", "lack policy"),
    "access_denied_gw": (403, 100013, "AccessDenied", "access denied"),
}
# case: (HTTP status, code, message); the service's own answers
BUSINESS: dict[str, tuple[int, int, str]] = {
    "image_risk": (400, 50411, "Pre Img Risk Not Pass"),
    "text_risk": (400, 50412, "Text Risk Not Pass"),
    "post_text_risk": (400, 50413, "Post Text Risk Not Pass"),
    "post_img_risk": (400, 50511, "Post Img Risk Not Pass"),
    "copyright": (400, 50518, "Pre Img Risk Not Pass: Copyright"),
    "risk_internal": (400, 50520, "Risk Internal Error"),
    "rate_limit": (429, 50429, "Request Has Reached API Limit, Please Try Later"),
    "concurrency": (429, 50430, "Request Has Reached API Concurrent Limit, Please Try Later"),
    "internal": (500, 50500, "Internal Error"),
    "rpc": (500, 50501, "Internal RPC Error"),
    "access_denied": (403, 50400, "Access Denied"),
    # the page documents no code for malformed parameters: this one stands for "unlisted 4xx"
    "bad_request": (400, 50215, "Input invalid for this service."),
}
HTML = {
    "gateway": (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "timeout": (504, b"<html><body><h1>504 Gateway Time-out</h1></body></html>"),
}


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeTask:
    id: str
    req_key: str
    request: dict[str, Any]
    outcome: str
    created_at: float
    polls: int = 0
    status: str = "in_queue"


def request_id() -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(10).upper()


class JimengFake(FakeUpstream):
    name = "jimeng"
    supports_delete = False
    renews_urls = True
    retry_after_header = False

    def __init__(
        self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, model: str = FAMILY
    ) -> None:
        self.keys = {access_key: secret_key}
        self.access_key, self.secret_key, self.model = access_key, secret_key, model
        self.denied: set[str] = set()
        self.tasks: dict[str, FakeTask] = {}
        self.answers: dict[str, list[Answer]] = {"submit": [], "poll": []}
        self.clock: Callable[[], float] = time.time
        self.clock_offset = 0.0
        self.error_data = "done"
        self.error_http_200 = False
        self.echo_status = True
        self.expired_status = "not_found"
        self.status_override: str | None = None
        self.signature_failures: list[str] = []  # why each refused signature was refused
        self._cdn_secret = secrets.token_bytes(16)
        super().__init__()

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/", self._action)

    def channel(self, base_url: str, *, model: str | None = None, **extra: Any) -> dict[str, Any]:
        model = model or self.model
        return {
            "name": "jimeng",
            "provider": "jimeng",
            "base_url": base_url,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "models": ["sora-2", model],
            "model_map": {"sora-2": model},
            **extra,
        }

    def now(self) -> float:
        return self.clock() + self.clock_offset

    # --- knobs ------------------------------------------------------------------------------

    def fail_next(self, op: str, case: str, *, retry_after: str | None = None) -> None:
        """Queue one canned answer for the next "submit" or "poll"."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        action = SUBMIT if op == "submit" else GET_RESULT
        if case in HTML:
            status, page = HTML[case]
            answer = Answer(status, page, "text/html", headers)
        elif case in GATEWAY:
            status, number, code, message = GATEWAY[case]
            body = gateway_body(action, number, code, message)
            answer = Answer(status, json.dumps(body).encode(), headers=headers)
        else:
            status, code_n, text = BUSINESS[case]
            answer = Answer(
                status, json.dumps(self.envelope(code_n, text)).encode(), headers=headers
            )
        self.answers[op].append(answer)

    def contract_error(self, op: str, kind: str, retry_after: int | None = None) -> None:
        """The page's own answers; its 429 carries no Retry-After, so `retry_after` is unused."""
        self.fail_next(op, {"auth": "signature", "rate_limit": "rate_limit"}[kind])

    def forget_tasks(self) -> None:
        self.tasks.clear()

    def submits(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.requests if r.query.get("Action") == SUBMIT]

    def results(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.requests if r.query.get("Action") == GET_RESULT]

    # --- envelopes --------------------------------------------------------------------------

    def envelope(self, code: int, message: str, data: Any = None) -> dict[str, Any]:
        body: dict[str, Any] = {"code": code, "data": data, "message": message}
        body["request_id"] = request_id()
        if self.echo_status:
            body["status"] = code
        body["time_elapsed"] = f"{secrets.randbelow(90000) / 1000 + 5:.6f}ms"
        return body

    def business(self, status: int, code: int, message: str, data: Any = None) -> web.Response:
        return web.json_response(self.envelope(code, message, data), status=status)

    def invalid(self, why: str) -> web.Response:
        status, code, message = BUSINESS["bad_request"]
        return self.business(status, code, f"{message} {why}")

    # --- the gateway ------------------------------------------------------------------------

    async def _action(self, request: web.Request) -> web.StreamResponse:
        action, version = request.query.get("Action"), request.query.get("Version")
        if not action or not version:
            return gateway(request, "missing_parameter")
        if action not in (SUBMIT, GET_RESULT) or version != VERSION:
            return gateway(request, "invalid_action")
        raw = await request.read()
        refused = self._verify(request, raw)
        if refused is not None:
            return refused
        op = "submit" if action == SUBMIT else "poll"
        if self.answers[op]:
            a = self.answers[op].pop(0)
            return web.Response(
                status=a.status, body=a.body, content_type=a.content_type, headers=a.headers
            )
        if self._access_key(request) in self.denied:
            return self.business(*BUSINESS["access_denied"])
        try:
            body = json.loads(raw)
        except ValueError:
            return self.invalid("the body is not JSON")
        if not isinstance(body, dict):
            return self.invalid("the body must be a JSON object")
        if action == SUBMIT:
            return self._submit(body)
        return self._get_result(body)

    @staticmethod
    def _access_key(request: web.Request) -> str:
        credential = request.headers.get("Authorization", "").partition("Credential=")[2]
        return credential.partition("/")[0]

    def _verify(self, request: web.Request, raw: bytes) -> web.Response | None:
        """The V4 check, rebuilt from the request as received."""
        found = _parse_authorization(request.headers.get("Authorization"))
        if isinstance(found, str):
            self.signature_failures.append(found)
            return gateway(request, found)
        credential, names, signature = found
        access_key, short_date, region, service, terminator = credential
        secret = self.keys.get(access_key)
        if secret is None:
            return self._refuse(request, "invalid_key", "unknown access key")
        x_date = request.headers.get("X-Date", "")
        try:
            when = datetime.strptime(x_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return self._refuse(request, "timestamp", "no readable X-Date")
        if abs(self.now() - when) > 15 * 60:
            return self._refuse(request, "timestamp", "X-Date more than 15 minutes off")
        if (region, service, terminator) != (REGION, SERVICE, "request"):
            return self._refuse(request, "signature", "wrong scope")
        if short_date != x_date[:8]:
            return self._refuse(request, "signature", "scope date is not the X-Date day")
        body_hash = hashlib.sha256(raw).hexdigest()
        sent_hash = request.headers.get("X-Content-Sha256")
        if sent_hash is not None and sent_hash != body_hash:
            return self._refuse(request, "signature", "X-Content-Sha256 is not the body's")
        lines = []
        for name in names:
            value = request.headers.get(name)
            if value is None:
                return self._refuse(request, "signature", f"signed header {name} not sent")
            value = value.strip()
            if name == "host":
                value = value.removesuffix(":443").removesuffix(":80")
            lines.append(f"{name}:{value}\n")
        pairs = sorted(request.rel_url.query.items())
        query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
        canonical = "\n".join(
            ["POST", request.path, query, "".join(lines), ";".join(names), body_hash]
        )
        scope = f"{short_date}/{region}/{service}/{terminator}"
        to_sign = (
            f"HMAC-SHA256\n{x_date}\n{scope}\n" + hashlib.sha256(canonical.encode()).hexdigest()
        )
        key = secret.encode()
        for part in (short_date, region, service, terminator):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return self._refuse(request, "signature", "signature mismatch")
        return None

    def _refuse(self, request: web.Request, case: str, why: str) -> web.Response:
        self.signature_failures.append(why)
        return gateway(request, case)

    # --- submit -----------------------------------------------------------------------------

    def _submit(self, body: dict[str, Any]) -> web.Response:
        problem = _check_submit(body)
        if problem is not None:
            return self.invalid(problem)
        fate = outcome(str(body.get("prompt", "")))
        if fate == "reject":
            return self.business(*BUSINESS["text_risk"])
        for marker in ("#empty", "#expired"):
            if marker in str(body.get("prompt", "")):
                fate = marker[1:]
        task_id = str(7_000_000_000_000_000_000 + secrets.randbelow(10**18))
        self.tasks[task_id] = FakeTask(task_id, body["req_key"], body, fate, self.now())
        return self.business(200, 10000, "Success", {"task_id": task_id})

    # --- get-result -------------------------------------------------------------------------

    def _get_result(self, body: dict[str, Any]) -> web.Response:
        for name in ("req_key", "task_id"):
            if not isinstance(body.get(name), str) or not body[name]:
                return self.invalid(f"{name} is required")
        if "req_json" in body:
            try:
                parsed = json.loads(body["req_json"]) if isinstance(body["req_json"], str) else 0
            except ValueError:
                parsed = 0
            if not isinstance(parsed, dict):
                return self.invalid("req_json must be a JSON string of an object")
        task = self.tasks.get(body["task_id"])
        if task is None or task.req_key != body["req_key"]:
            return self._status("not_found")
        if self.now() - task.created_at > RECORD_S:
            return self._status(self.expired_status)
        self._advance(task)
        status = self.status_override or task.status
        if status != "done":
            return self._status(status)
        return self._done(task)

    def _status(self, status: str) -> web.Response:
        return self.business(200, 10000, "Success", {"status": status, "video_url": ""})

    def _advance(self, task: FakeTask) -> None:
        if task.status in ("done", "expired"):
            return
        task.polls += 1
        if task.polls >= self.polls_to_finish:
            task.status = "expired" if task.outcome == "expired" else "done"
        elif task.polls == 1 and self.polls_to_finish > 2:
            task.status = "in_queue"
        else:
            task.status = "generating"

    def _done(self, task: FakeTask) -> web.Response:
        if task.outcome in ("fail", "moderation"):
            status, code, message = BUSINESS[
                "internal" if task.outcome == "fail" else "post_img_risk"
            ]
            data = {"status": "done", "video_url": ""} if self.error_data == "done" else None
            return self.business(200 if self.error_http_200 else status, code, message, data)
        if task.outcome == "empty":
            return self._status("done")
        data = {"aigc_meta_tagged": True, "status": "done", "video_url": self.sign_url(task.id)}
        return self.business(200, 10000, "Success", data)

    # --- the CDN: URLs signed for an hour ---------------------------------------------------

    def sign_url(self, task_id: str) -> str:
        """A URL signed now: one signed at another moment differs (microseconds count)."""
        name = f"{task_id}.mp4"
        self.files[name] = VIDEO
        signed_at = f"{self.now():.6f}"
        expires = int(float(signed_at)) + URL_S
        sig = self._url_signature(name, signed_at, str(expires))
        return self.cdn_url(name, f"x-signed-at={signed_at}&x-expires={expires}&x-signature={sig}")

    def _url_signature(self, name: str, signed_at: str, expires: str) -> str:
        message = f"{name}:{signed_at}:{expires}".encode()
        return hmac.new(self._cdn_secret, message, hashlib.sha256).hexdigest()

    async def _serve_cdn(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name.endswith(".mp4") and name[:-4] in self.tasks and self.cdn.status is None:
            expires = request.query.get("x-expires", "")
            sig = request.query.get("x-signature", "")
            good = self._url_signature(name, request.query.get("x-signed-at", ""), expires)
            if (
                not hmac.compare_digest(good, sig)
                or not expires.isdigit()
                or (int(expires) < self.now())
            ):
                self.cdn_stats.requests += 1
                return web.Response(
                    status=403,
                    text="<Error><Code>AccessDenied</Code><Message>Request has expired</Message>"
                    "</Error>",
                    content_type="application/xml",
                )
        return await super()._serve_cdn(request)


def gateway_body(action: str, number: int, code: str, message: str) -> dict[str, Any]:
    return {
        "ResponseMetadata": {
            "RequestId": request_id(),
            "Action": action,
            "Version": VERSION,
            "Service": SERVICE,
            "Region": REGION,
            "Error": {"CodeN": number, "Code": code, "Message": message},
        }
    }


def gateway(request: web.Request, case: str) -> web.Response:
    status, number, code, message = GATEWAY[case]
    body = gateway_body(request.query.get("Action", ""), number, code, message)
    return web.json_response(body, status=status)


def _parse_authorization(header: str | None) -> tuple[list[str], list[str], str] | str:
    """(credential parts, signed header names, signature), or the gateway case to answer."""
    if not header:
        return "missing_token"
    algorithm, _, rest = header.partition(" ")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        key, eq, value = item.strip().partition("=")
        if eq:
            parts[key] = value
    if not parts.get("Signature"):
        return "missing_signature"
    credential = parts.get("Credential", "").split("/")
    names = parts.get("SignedHeaders", "")
    if algorithm != "HMAC-SHA256" or len(credential) != 5 or not names:
        return "missing_request_info"
    return credential, names.split(";"), parts["Signature"]


def _check_submit(body: dict[str, Any]) -> str | None:
    """What the service refuses in a submit body, as the page describes the fields."""
    req_key = body.get("req_key")
    if not isinstance(req_key, str) or req_key not in KEYS:
        return f"unknown req_key {req_key!r}"
    counts, ratios = KEYS[req_key]
    urls, blobs = body.get("image_urls"), body.get("binary_data_base64")
    if urls is not None and blobs is not None:
        return "image_urls and binary_data_base64 cannot be combined"
    images = urls if urls is not None else blobs
    if images is not None and (
        not isinstance(images, list) or not all(isinstance(i, str) and i for i in images)
    ):
        return "images must be a list of strings"
    if blobs is not None:
        for blob in blobs:
            problem = _check_blob(blob)
            if problem:
                return problem
    count = len(images or [])
    if count not in counts:
        return f"{req_key} takes {' or '.join(map(str, counts))} images, got {count}"
    prompt = body.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        return "prompt must be a string"
    if count == 0 and not prompt:
        return "prompt is required"
    if prompt and len(prompt) > 800:
        return "prompt is longer than 800 characters"
    seed = body.get("seed", -1)
    if not isinstance(seed, int) or isinstance(seed, bool):
        return "seed must be an integer"
    if body.get("frames", 121) not in (121, 241) or isinstance(body.get("frames"), bool):
        return "frames must be 121 or 241"
    # with images the ratio comes from the image: a valid aspect_ratio is accepted and ignored
    # (the page's own example sends one), an empty or unknown one is refused
    if "aspect_ratio" in body and body["aspect_ratio"] not in (ratios or RATIOS):
        return f"invalid aspect_ratio {body['aspect_ratio']!r}"
    recamera = req_key == "jimeng_i2v_recamera_v30"
    if recamera and not isinstance(body.get("template_id"), str):
        return "template_id is required"
    if not recamera and ("template_id" in body or "camera_strength" in body):
        return "template_id and camera_strength are for the camera template key only"
    return None


def _check_blob(blob: str) -> str | None:
    if blob.startswith("data:"):
        return "binary_data_base64 must be raw base64, without a data: prefix"
    try:
        data = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return "binary_data_base64 is not valid base64"
    if len(data) > MAX_IMAGE:
        return "the image is larger than 4.7 MB"
    if not data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")):
        return "the image must be JPEG or PNG"
    return None
