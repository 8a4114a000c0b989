"""A fake Runway developer API (spec/providers/runway.md), faithful to the page.

Every call is checked in the page's order: a missing or non-Bearer `Authorization` is a 401, an
unknown key a 401, a missing or unknown `X-Runway-Version` a 400 naming the header (401 with
`version_status`). Three create paths answer `{"id": "<uuid>"}`; `GET /v1/tasks/{id}` answers the
task object (`PENDING`, then `THROTTLED` for `throttled_polls` polls, `RUNNING` with a 0-1
`progress`, then `SUCCEEDED` with a CloudFront-style URL signed by a fresh `_jwt` on every poll);
`DELETE /v1/tasks/{id}` cancels an active task and deletes a finished one with its output. Also
`POST /v1/uploads` (and the upload bucket it names), `GET /v1/organization`. Error bodies are
`{"error": "..."}`; a validation failure is the Zod-style 400 with `issues` and `docUrl`. A wrong
method on a known path is aiohttp's own 405.

Bodies are validated per model, as the page's tables say: camelCase only, `ratio` from the
model's pixel sizes for that endpoint, `duration` a JSON integer in the model's range, the
optional fields only where the model has them, media as an https URL on a domain name, a data
URI under its limit (5 MB images, 16 MB video/audio), a `runway://` upload URI, or one of the
fake's own output URLs (which stand in for CloudFront).

Prompt markers beyond the shared ones (tests/fakes/base.py) pick a FAILED task's failureCode:
FAILURES below. Knobs for the page's unconfirmed points, each form accepted or emitted:
`version_status` (400 or 401), `delete_status` (204 empty or 200 `{}`), `cancelled_reads` (how
many polls still see a cancelled task as CANCELLED before it is gone: 1 or 0), `estimate` /
`report_cost` (`estimatedCost` on create, `cost` on a finished task), `credits_status` (400, 402
or 429 for the credits case), `failure_code` ("absent" or "null" on an older failure, and for a
safety failure with `safety_code=False`), `refuse_output_urls` (Runway will not take its own
output URL as videoUri), `check_image_shape` (the aspect 0.5-2.0 / < 8000 px rule, PNG only);
gen4_turbo takes any duration 2-10 and seedance's reference images both as position-less
`promptImage` items and as `references[]`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
import secrets
import struct
import time
import uuid
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from tests.fakes.base import VIDEO, FakeUpstream, outcome

API_KEY = "key_" + "5f0c2d7e8b1a4e3f9c6d2a7b8e9f0a1b" * 4
VERSION = "2024-11-06"
I2V, T2V, V2V = "image_to_video", "text_to_video", "video_to_video"
DOC_URL = "https://docs.dev.runwayml.com/api"
MB = 1024 * 1024
SEED_MAX = 4_294_967_295

GEN45_I2V = ["1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672"]
WIDE_OR_TALL = ["1280:720", "720:1280"]
VEO = ["1280:720", "720:1280", "1080:1920", "1920:1080"]
HAPPYHORSE = ["1280:720", "720:1280", "960:960", "1108:832", "832:1108", "1920:1080",
              "1080:1920", "1440:1440", "1662:1248", "1248:1662"]  # fmt: skip
SEEDANCE_720 = ["992:432", "864:496", "752:560", "640:640", "560:752", "496:864",
                "1470:630", "1280:720", "1112:834", "960:960", "834:1112", "720:1280"]  # fmt: skip
# the page names 24 sizes "up to 3840:3840" but not the 4k six: the named ones only
SEEDANCE = [*SEEDANCE_720, "2206:946", "1920:1080", "1664:1248", "1440:1440", "1248:1664",
            "1080:1920", "3840:3840"]  # fmt: skip
ASPECTS = ["16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "21:9"]


@dataclass(frozen=True)
class Spec:
    ratios: dict[str, list[str] | None]  # endpoint -> sizes (None: free string; []: no ratio)
    durations: range | tuple[int, ...] | None  # None: follows the input video
    duration_required: bool = False
    ratio_required: bool = False
    prompt_limit: int | None = 1000
    prompt_required_i2v: bool = False
    fields: frozenset[str] = frozenset()  # optional fields beyond model/promptText/...
    last: bool = False
    references: bool = False


_SEEDANCE_FIELDS = frozenset({"audio", "references", "referenceVideos", "referenceAudio"})
MODELS: dict[str, Spec] = {
    "gen4.5": Spec({I2V: GEN45_I2V, T2V: WIDE_OR_TALL}, range(2, 11), True, True,
                   prompt_required_i2v=True, fields=frozenset({"seed", "contentModeration"})),
    # Unconfirmed: 5/10 (older docs) or 2-10 (resellers): every value of both is taken
    "gen4_turbo": Spec({I2V: GEN45_I2V}, range(2, 11), ratio_required=True,
                       fields=frozenset({"seed", "contentModeration"})),
    "veo3.1": Spec({I2V: VEO, T2V: VEO}, (4, 6, 8), ratio_required=True,
                   fields=frozenset({"audio", "negativePrompt"}), last=True),
    "veo3.1_fast": Spec({I2V: VEO, T2V: VEO}, (4, 6, 8), ratio_required=True,
                        fields=frozenset({"audio", "negativePrompt"}), last=True),
    "veo3": Spec({I2V: VEO, T2V: VEO}, (8,), True, True, fields=frozenset({"negativePrompt"})),
    "gemini_omni_flash": Spec({I2V: WIDE_OR_TALL, T2V: WIDE_OR_TALL, V2V: WIDE_OR_TALL},
                              range(3, 11), prompt_limit=None, fields=frozenset({"promptVideo"})),
    "happyhorse_1_0": Spec({I2V: [], T2V: HAPPYHORSE}, range(1, 16), prompt_limit=2500,
                           fields=frozenset({"resolution"})),
    "seedance2": Spec({I2V: SEEDANCE, T2V: SEEDANCE, V2V: SEEDANCE}, range(1, 16),
                      prompt_limit=3500, fields=_SEEDANCE_FIELDS | {"promptVideo"}, last=True,
                      references=True),
    "seedance2_fast": Spec({I2V: SEEDANCE_720, T2V: SEEDANCE_720, V2V: SEEDANCE_720},
                           range(1, 16), prompt_limit=3500,
                           fields=_SEEDANCE_FIELDS | {"promptVideo"}, last=True, references=True),
    "seedance2_mini": Spec({I2V: SEEDANCE_720, T2V: SEEDANCE_720, V2V: SEEDANCE_720},
                           range(1, 16), prompt_limit=3500,
                           fields=_SEEDANCE_FIELDS | {"promptVideo"}, last=True, references=True),
    "aleph2": Spec({V2V: None}, None, prompt_limit=None,
                   fields=frozenset({"seed", "contentModeration", "keyframes",
                                     "targetAspectRatio"})),
}  # fmt: skip
BASE_FIELDS = frozenset({"model", "promptText", "promptImage", "ratio", "duration"})
V2V_FIELDS = frozenset({"model", "promptText", "videoUri", "ratio", "duration"})
# marker: (failureCode, failure), the page's families
FAILURES = {
    "fail": ("INTERNAL.BAD_OUTPUT.CODE01", "An unexpected error occurred."),
    "moderation": (
        "SAFETY.INPUT.TEXT", "Your prompt was flagged by our content moderation system."
    ),
    "output_safety": ("SAFETY.OUTPUT.VIDEO", "The output was flagged by our content moderation."),
    "input_safety": ("INPUT_PREPROCESSING.SAFETY.IMAGE", "The input image was flagged."),
    "preprocessing": ("INPUT_PREPROCESSING.CORRUPT", "The input could not be processed."),
    "asset": ("ASSET.INVALID", "The asset is invalid."),
    "third_party": ("THIRD_PARTY.UNAVAILABLE", "A partner model is unavailable. Retry later."),
    "old_failure": (None, "An unexpected error occurred."),
}  # fmt: skip
CREDITS = "You do not have enough credits to run this task."
# case: (status, error) for fail_next; None: no JSON body (the page's "—")
ERRORS: dict[str, tuple[int, str | None]] = {
    "auth": (401, "Invalid API key provided."),
    "version": (400, "The X-Runway-Version header is missing or not a valid version."),
    "credits": (400, CREDITS),
    "asset": (400, "Invalid asset: promptImage could not be fetched (the server redirected)."),
    "moderation": (400, "Your prompt did not pass content moderation."),
    "not_found": (404, "Task not found"),
    "rate_limit": (429, "You have exceeded the rate limit. Please slow down."),
    "daily": (429, "You have reached the maximum daily generations for this model."),
    "internal": (500, "An unexpected error occurred."),
    "shed": (502, None),
    "unavailable": (503, None),
    "overloaded": (504, None),
}
DATA_URI = re.compile(r"^data:([a-z]+)/[a-z0-9.+-]+;base64,([A-Za-z0-9+/]*={0,2})$")


class Invalid(Exception):
    """A validation failure: the Zod-style 400, or a plain `{"error"}` 400 (issue None)."""

    def __init__(self, message: str, issue: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message, self.issue = message, issue


def issue(path: list[Any], message: str, code: str = "custom", **extra: Any) -> Invalid:
    return Invalid("Validation of body failed", {"code": code, "path": path, "message": message,
                                                 **extra})  # fmt: skip


@dataclass
class Task:
    id: str
    endpoint: str
    body: dict[str, Any]
    outcome: str
    created_at: str
    polls: int = 0
    cancelled: bool = False
    cancelled_reads: int = 0
    file: str = ""


@dataclass
class Canned:
    status: int
    error: str | None
    headers: dict[str, str] = field(default_factory=dict)
    issue: dict[str, Any] | None = None


class RunwayFake(FakeUpstream):
    name: ClassVar[str] = "runway"
    supports_delete: ClassVar[bool] = True
    supports_cancel: ClassVar[bool] = True
    renews_urls: ClassVar[bool] = True  # every poll signs the output URL afresh
    retry_after_header: ClassVar[bool] = False  # the page shows none

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.tasks: dict[str, Task] = {}
        self.uploads: dict[str, float] = {}  # runway:// URI -> when it stops being valid
        self.slots: dict[str, dict[str, str]] = {}  # upload key -> its form fields
        self.unusable_urls: set[str] = set()  # https URLs whose server breaks the URL rules
        # URL prefixes that stand in for a public https host (the relay's public_url in tests):
        # fetched as Runway does, HEAD first and no redirect followed
        self.fetchable: set[str] = set()
        self.fetched: list[tuple[str, int, str, int]] = []  # (url, status, type, length)
        self._to_fetch: list[tuple[str, str, str]] = []
        self.throttled_polls = 0
        self.progress = True  # RUNNING carries `progress`
        self.status_override: str | None = None
        self.version_status = 400
        self.delete_status = 204
        self.cancelled_reads = 1
        self.estimate = False
        self.report_cost = False
        self.credits_status = 400
        self.failure_code = "absent"  # or "null": an older failure's failureCode
        self.safety_code = True
        self.refuse_output_urls = False
        self.check_image_shape = False
        self.credit_balance = 100_000
        self.daily_limit: int | None = None
        self.answers: dict[str, list[Canned]] = {"submit": [], "poll": [], "delete": []}
        self.cdn_version_headers: list[str | None] = []
        self.jwt_count = 0
        super().__init__()
        # Runway takes data URIs up to 16 MB inside a JSON body; aiohttp's default is 1 MB
        self.app._client_max_size = 64 * MB

    def routes(self, router: web.UrlDispatcher) -> None:
        for endpoint in (I2V, T2V, V2V):
            router.add_post(f"/v1/{endpoint}", self._create)
        router.add_get("/v1/tasks/{id}", self._poll)
        router.add_delete("/v1/tasks/{id}", self._delete)
        router.add_post("/v1/uploads", self._upload_slot)
        router.add_post("/upload-bucket", self._upload)
        router.add_get("/v1/organization", self._organization)

    def channel(self, base_url: str, **overrides: Any) -> dict[str, Any]:
        return {
            "name": "runway",
            "provider": "runway",
            "base_url": base_url,
            "api_key": self.api_key,
            "models": ["sora-2", *MODELS],
            "model_map": {"sora-2": "gen4.5"},
            "options": {"min_poll_s": 0},  # the page's 5 s floor would slow every test
            **overrides,
        }

    # --- knobs ------------------------------------------------------------------------

    def fail_next(self, op: str, case: str, *, retry_after: str | None = None) -> None:
        """Queue one canned answer (ERRORS) for the next "submit", "poll" or "delete"."""
        status, error = ERRORS[case]
        if case == "version":
            status = self.version_status
        if case == "credits":
            status = self.credits_status
        headers = {"Retry-After": retry_after} if retry_after else {}
        self.answers[op].append(Canned(status, error, headers))

    def fail_validation(self, op: str, path: str, message: str) -> None:
        self.answers[op].append(
            Canned(400, "Validation of body failed", issue=issue([path], message).issue)
        )

    def contract_error(self, op: str, kind: str, retry_after: int | None = None) -> None:
        if kind not in ("auth", "rate_limit"):
            raise ValueError(f"no contract error {kind!r}")
        self.fail_next(op, kind)

    def forget_tasks(self) -> None:
        self.tasks.clear()

    def creates(self, endpoint: str | None = None) -> list[Any]:
        return [
            r.json()
            for r in self.requests
            if r.method == "POST" and r.path in {f"/v1/{e}" for e in (I2V, T2V, V2V)}
            and (endpoint is None or r.path == f"/v1/{endpoint}")
        ]  # fmt: skip

    # --- native answers -----------------------------------------------------------------

    def error(self, status: int, error: str | None, **extra: Any) -> web.Response:
        if error is None:  # a load balancer's answer: HTML or nothing
            text = "<html><body><h1>502 Bad Gateway</h1></body></html>" if status == 502 else ""
            return web.Response(status=status, text=text, content_type="text/html")
        return web.json_response({"error": error, **extra}, status=status)

    def _invalid(self, exc: Invalid) -> web.Response:
        if exc.issue is None:
            return self.error(400, exc.message)
        return self.error(400, exc.message, issues=[exc.issue], docUrl=DOC_URL)

    def _canned(self, op: str) -> web.Response | None:
        if not self.answers[op]:
            return None
        c = self.answers[op].pop(0)
        if c.issue is not None:
            return self._invalid(Invalid(c.error or "", c.issue))
        resp = self.error(c.status, c.error)
        resp.headers.update(c.headers)
        return resp

    def _auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return self.error(401, "Missing or malformed Authorization header.")
        if header != f"Bearer {self.api_key}":
            return self.error(401, "Invalid API key provided.")
        if request.headers.get("X-Runway-Version") != VERSION:
            return self.error(
                self.version_status,
                "The X-Runway-Version header is missing or not a valid version. "
                f"Expected one of: {VERSION}",
            )
        return None

    # --- create -------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        refused = self._auth(request) or self._canned("submit")
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self.error(400, "Request body must be valid JSON.")
        endpoint = request.path.rsplit("/", 1)[1]
        self._to_fetch = []
        try:
            self._validate(endpoint, body)
            for url, name, kind in self._to_fetch:
                await self._fetch(url, name, kind)
        except Invalid as exc:
            return self._invalid(exc)
        prompt = body.get("promptText") or ""
        result = outcome(prompt)
        for marker in FAILURES:
            if f"#{marker}" in prompt:
                result = marker
        if "#nooutput" in prompt:
            result = "nooutput"
        if result == "reject":
            return self.error(400, "Your prompt did not pass content moderation.")
        model = body["model"]
        if self.credit_balance <= 0:
            return self.error(self.credits_status, CREDITS)
        made = sum(t.body["model"] == model for t in self.tasks.values())
        if self.daily_limit is not None and made >= self.daily_limit:
            return self.error(429, "You have reached the maximum daily generations for this model.")
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        task = Task(str(uuid.uuid4()), endpoint, body, result, created)
        self.tasks[task.id] = task
        answer: dict[str, Any] = {"id": task.id}
        if self.estimate:
            answer["estimatedCost"] = {"credits": 5 * int(body.get("duration") or 5)}
        return web.json_response(answer)

    def _validate(self, endpoint: str, body: Any) -> None:
        if not isinstance(body, dict):
            raise issue([], "Expected object, received " + type(body).__name__, "invalid_type")
        model = body.get("model")
        if not isinstance(model, str):
            raise issue(["model"], "Required", "invalid_type")
        spec = MODELS.get(model)
        if spec is None or endpoint not in spec.ratios:
            options = [m for m, s in MODELS.items() if endpoint in s.ratios]
            raise issue(["model"], f"Invalid enum value. Expected {' | '.join(options)}, "
                        f"received '{model}'", "invalid_enum_value", received=model,
                        options=options)  # fmt: skip
        base = V2V_FIELDS if endpoint == V2V else BASE_FIELDS
        unknown = sorted(set(body) - base - spec.fields)
        if unknown:
            raise issue([], f"Unrecognized key(s) in object: {', '.join(map(repr, unknown))}",
                        "unrecognized_keys", keys=unknown)  # fmt: skip
        self._prompt(body, spec, endpoint)
        if endpoint == I2V:
            self._prompt_image(body, spec, model)
        if endpoint == V2V:
            source = body.get("videoUri", body.get("promptVideo"))
            if source is None:
                raise issue(["videoUri"], "Required", "invalid_type")
            self._media(source, "videoUri", "video")
        self._ratio(body, spec, endpoint)
        self._duration(body, spec)
        self._optional(body, spec)

    def _prompt(self, body: dict[str, Any], spec: Spec, endpoint: str) -> None:
        text = body.get("promptText")
        required = endpoint in (T2V, V2V) or (endpoint == I2V and spec.prompt_required_i2v)
        if text is None:
            if required:
                raise issue(["promptText"], "Required", "invalid_type")
            return
        if not isinstance(text, str) or not text:
            raise issue(["promptText"], "String must contain at least 1 character(s)", "too_small")
        units = len(text.encode("utf-16-le")) // 2
        if spec.prompt_limit is not None and units > spec.prompt_limit:
            raise issue(["promptText"], f"String must contain at most {spec.prompt_limit} "
                        "character(s)", "too_big")  # fmt: skip

    def _prompt_image(self, body: dict[str, Any], spec: Spec, model: str) -> None:
        value = body.get("promptImage")
        references = body.get("references")
        if value is None and references is None:
            raise issue(["promptImage"], "Required", "invalid_type")
        if isinstance(value, str):
            self._media(value, "promptImage", "image")
        elif isinstance(value, list) and value:
            positions = []
            for i, item in enumerate(value):
                if not isinstance(item, dict) or not isinstance(item.get("uri"), str):
                    raise issue(["promptImage", i, "uri"], "Required", "invalid_type")
                self._media(item["uri"], "promptImage", "image")
                positions.append(item.get("position"))
            if any(p not in ("first", "last", None) for p in positions):
                raise issue(["promptImage"], "Invalid position", "invalid_enum_value")
            if None in positions and (not spec.references or set(positions) != {None}):
                raise issue(["promptImage"], "Reference images cannot be mixed with first/last "
                            "frames, and only seedance2 models take them")  # fmt: skip
            if "last" in positions and not spec.last:
                raise issue(["promptImage"], f"{model} does not support a last frame")
            if positions.count("last") > 1 or positions.count("first") > 1:
                raise issue(["promptImage"], "At most one first and one last frame")
            if "last" in positions and "first" not in positions:
                raise issue(["promptImage"], "A last frame requires a first frame")
            if len(positions) > 9:
                raise issue(["promptImage"], "At most 9 reference images", "too_big")
        elif value is not None:
            raise issue(["promptImage"], "Expected string or array", "invalid_type")
        if references is not None:
            if not spec.references or not isinstance(references, list) or len(references) > 9:
                raise issue(["references"], "At most 9 reference images on seedance2 models")
            for item in references:
                uri = item.get("uri") if isinstance(item, dict) else item
                self._media(uri, "references", "image")

    def _ratio(self, body: dict[str, Any], spec: Spec, endpoint: str) -> None:
        allowed = spec.ratios[endpoint]
        ratio = body.get("ratio")
        if ratio is None:
            if spec.ratio_required:
                raise issue(["ratio"], "Required", "invalid_type")
            return
        if allowed is None:  # aleph2: a free string
            if not isinstance(ratio, str):
                raise issue(["ratio"], "Expected string", "invalid_type")
            return
        if not allowed:
            raise issue(["ratio"], "ratio is not accepted here; the image decides the aspect")
        if ratio not in allowed:
            raise issue(["ratio"], "Invalid enum value. Expected "
                        + " | ".join(f"'{r}'" for r in allowed) + f", received '{ratio}'",
                        "invalid_enum_value", received=ratio, options=allowed)  # fmt: skip

    def _duration(self, body: dict[str, Any], spec: Spec) -> None:
        value = body.get("duration")
        if value is None:
            if spec.duration_required:
                raise issue(["duration"], "Required", "invalid_type")
            return
        if spec.durations is None:
            raise issue(["duration"], "duration follows the input video")
        if type(value) is not int:
            raise issue(["duration"], f"Expected number, received {type(value).__name__}",
                        "invalid_type")  # fmt: skip
        if value not in spec.durations:
            raise issue(["duration"], f"Invalid duration {value}", "invalid_enum_value")

    def _optional(self, body: dict[str, Any], spec: Spec) -> None:
        seed = body.get("seed")
        if seed is not None and (type(seed) is not int or not 0 <= seed <= SEED_MAX):
            raise issue(["seed"], f"Number must be between 0 and {SEED_MAX}", "too_big")
        moderation = body.get("contentModeration")
        if moderation is not None and (
            not isinstance(moderation, dict)
            or set(moderation) - {"publicFigureThreshold"}
            or moderation.get("publicFigureThreshold", "auto") not in ("auto", "low")
        ):
            raise issue(["contentModeration"], "Invalid contentModeration")
        for name, kind in (("audio", bool), ("negativePrompt", str)):
            if name in body and not isinstance(body[name], kind):
                raise issue([name], f"Expected {kind.__name__}", "invalid_type")
        if "resolution" in body and body["resolution"] not in ("720P", "1080P"):
            raise issue(["resolution"], "Invalid enum value", "invalid_enum_value")
        if "targetAspectRatio" in body and body["targetAspectRatio"] not in ASPECTS:
            raise issue(["targetAspectRatio"], "Invalid enum value", "invalid_enum_value")
        keyframes = body.get("keyframes")
        if keyframes is not None:
            if not isinstance(keyframes, list) or len(keyframes) > 5:
                raise issue(["keyframes"], "At most 5 keyframes", "too_big")
            for item in keyframes:
                if not isinstance(item, dict) or not ({"seconds", "at"} & set(item)):
                    raise issue(["keyframes"], "Each keyframe takes uri and seconds or at")
                self._media(item.get("uri"), "keyframes", "image")
        for name, kind in (("referenceVideos", "video"), ("referenceAudio", "audio")):
            items = body.get(name)
            if items is None:
                continue
            if not isinstance(items, list):
                raise issue([name], "Expected array", "invalid_type")
            for item in items:
                self._media(item.get("uri") if isinstance(item, dict) else item, name, kind)

    def _media(self, value: Any, name: str, kind: str) -> None:
        """One input by the page's three forms; a refusal names the asset."""
        if not isinstance(value, str) or not value:
            raise issue([name], "Expected string", "invalid_type")
        if value.startswith("data:"):
            found = DATA_URI.match(value)
            if found is None:
                raise Invalid(f"Invalid asset: {name} must be a base64 data URI with its type")
            if found[1] != kind:
                raise Invalid(f"Invalid asset: {name} is not {kind}")
            limit = 5 * MB if kind == "image" else 16 * MB
            if len(value) >= limit:
                raise Invalid(f"Invalid asset: {name} data URI exceeds {limit // MB} MB")
            try:
                data = base64.b64decode(found[2], validate=True)
            except (binascii.Error, ValueError):
                raise Invalid(f"Invalid asset: {name} is not valid base64") from None
            if kind == "image" and self.check_image_shape:
                self._image_shape(data, name)
            return
        if value.startswith("runway://"):
            if self.uploads.get(value, 0) < time.time():
                raise Invalid(f"Invalid asset: {name} upload URI is unknown or expired")
            return
        if any(value.startswith(prefix) for prefix in self.fetchable):
            self._to_fetch.append((value, name, kind))
            return
        relative = value.removeprefix(self.base_url)
        if relative.startswith("/cdn/"):  # one of this fake's outputs, as CloudFront
            if self.refuse_output_urls or relative in self.expired or relative not in self.issued:
                raise Invalid(f"Invalid asset: {name} could not be fetched (HTTP 403)")
            return
        parts = urlsplit(value)
        host = parts.hostname or ""
        if parts.scheme != "https" or not host or len(value) > 2048:
            raise Invalid(f"Invalid asset: {name} must be an https URL of at most 2048 characters")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            raise Invalid(f"Invalid asset: {name} must use a domain name, not an IP address")
        if value in self.unusable_urls:
            raise Invalid(f"Invalid asset: {name} URL redirected or has a wrong Content-Type")

    async def _fetch(self, url: str, name: str, kind: str) -> None:
        """As Runway fetches a URL input: HEAD must answer 200 with the right type and a length,
        with no redirect; then the file itself."""
        async with aiohttp.ClientSession() as session:
            async with session.head(url, allow_redirects=False) as head:
                ctype = head.headers.get("Content-Type", "").split(";")[0]
                length = head.headers.get("Content-Length", "")
                if head.status != 200 or not ctype.startswith(f"{kind}/") or not length:
                    self.fetched.append((url, head.status, ctype, 0))
                    raise Invalid(f"Invalid asset: {name} URL answered HEAD {head.status} {ctype}")
            async with session.get(url, allow_redirects=False) as got:
                data = await got.read()
                self.fetched.append((url, got.status, ctype, len(data)))
                if got.status != 200 or len(data) != int(length):
                    raise Invalid(f"Invalid asset: {name} could not be fetched")

    def _image_shape(self, data: bytes, name: str) -> None:
        if data[:8] != b"\x89PNG\r\n\x1a\n":
            return
        width, height = struct.unpack(">II", data[16:24])
        if not 0.5 <= width / height <= 2.0 or max(width, height) >= 8000:
            raise Invalid(f"Invalid asset: {name} aspect must be 0.5-2.0, sides under 8000 px")

    # --- tasks --------------------------------------------------------------------------

    async def _poll(self, request: web.Request) -> web.Response:
        refused = self._auth(request) or self._canned("poll")
        if refused is not None:
            return refused
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return self.error(404, "Task not found")
        task.polls += 1
        answer: dict[str, Any] = {"id": task.id, "status": "PENDING", "createdAt": task.created_at}
        if task.cancelled:
            task.cancelled_reads -= 1
            if task.cancelled_reads <= 0:
                del self.tasks[task.id]
            answer["status"] = "CANCELLED"
        elif self.status_override is not None:
            answer["status"] = self.status_override
        elif task.polls < self.polls_to_finish:
            if 1 < task.polls <= 1 + self.throttled_polls:
                answer["status"] = "THROTTLED"
            elif task.polls > 1 + self.throttled_polls:
                answer["status"] = "RUNNING"
                if self.progress:
                    answer["progress"] = round(task.polls / self.polls_to_finish, 3)
        else:
            self._finished(task, answer)
        return web.json_response(answer)

    def _finished(self, task: Task, answer: dict[str, Any]) -> None:
        if self.report_cost:
            answer["cost"] = {"credits": 5 * int(task.body.get("duration") or 5)}
        if task.outcome in FAILURES:
            code, failure = FAILURES[task.outcome]
            if task.outcome == "moderation" and not self.safety_code:
                code = None
            answer.update(status="FAILED", failure=failure)
            if code is not None:
                answer["failureCode"] = code
            elif self.failure_code == "null":
                answer["failureCode"] = None
            return
        answer["status"] = "SUCCEEDED"
        if task.outcome == "nooutput":
            answer["output"] = []
            return
        if not task.file:
            task.file = f"{uuid.uuid4()}.mp4"
            self.files[task.file] = VIDEO
        answer["output"] = [self.cdn_url(task.file, "_jwt=" + self._jwt())]

    def _jwt(self) -> str:
        self.jwt_count += 1
        claims = {"bucket": "runway-task-artifacts", "stage": "prod", "n": self.jwt_count,
                  "exp": int(time.time()) + 86400}  # fmt: skip
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{payload}.{secrets.token_urlsafe(12)}"

    async def _delete(self, request: web.Request) -> web.Response:
        refused = self._auth(request) or self._canned("delete")
        if refused is not None:
            return refused
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return self.error(404, "Task not found")
        active = not task.cancelled and task.polls < self.polls_to_finish
        if active:
            task.cancelled, task.cancelled_reads = True, self.cancelled_reads
            if task.cancelled_reads <= 0:
                del self.tasks[task.id]
        else:  # a finished task goes with its output
            del self.tasks[task.id]
            self.files.pop(task.file, None)
        if self.delete_status == 204:
            return web.Response(status=204)
        return web.json_response({}, status=self.delete_status)

    # --- uploads, organization, CDN ------------------------------------------------------

    async def _upload_slot(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self.error(400, "Request body must be valid JSON.")
        if not isinstance(body, dict) or not isinstance(body.get("filename"), str):
            return self._invalid(issue(["filename"], "Required", "invalid_type"))
        if body.get("type") != "ephemeral":
            return self._invalid(issue(["type"], "Invalid literal value, expected 'ephemeral'"))
        key = f"uploads/{uuid.uuid4()}/{body['filename']}"
        fields = {"key": key, "policy": secrets.token_urlsafe(24),
                  "x-amz-signature": secrets.token_hex(32)}  # fmt: skip
        self.slots[key] = fields
        return web.json_response(
            {"uploadUrl": self.url("/upload-bucket"), "fields": fields,
             "runwayUri": f"runway://upload/{key.split('/')[1]}"}
        )  # fmt: skip

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload bucket: a multipart POST with every slot field and a `file` part, and none
        of Runway's headers (they are not for this host)."""
        if "Authorization" in request.headers or "X-Runway-Version" in request.headers:
            return web.Response(status=400, text="unexpected Authorization header")
        # the request log has read the body already, so the form is parsed from its bytes
        raw = b"Content-Type: " + request.headers["Content-Type"].encode() + b"\r\n\r\n"
        message = BytesParser(policy=HTTP).parsebytes(raw + await request.read())
        form: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            form[str(name)] = part.get_filename() or part.get_content()
        key = form.get("key")
        fields = self.slots.get(key) if isinstance(key, str) else None
        if fields is None or any(form.get(k) != v for k, v in fields.items()):
            return web.Response(status=403, text="AccessDenied: policy mismatch")
        if "file" not in form:
            return web.Response(status=400, text="missing file")
        del self.slots[str(key)]
        self.uploads[f"runway://upload/{str(key).split('/')[1]}"] = time.time() + 24 * 3600
        return web.Response(status=204)

    async def _organization(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        limits = {m: {"maxConcurrentGenerations": 2, "maxDailyGenerations": self.daily_limit or 50}
                  for m in MODELS}  # fmt: skip
        used = {m: {"dailyGenerations": sum(t.body["model"] == m for t in self.tasks.values())}
                for m in MODELS}  # fmt: skip
        return web.json_response(
            {"creditBalance": self.credit_balance,
             "tier": {"maxMonthlyCreditSpend": 100_000, "models": limits},
             "usage": {"models": used}}
        )  # fmt: skip

    async def _serve_cdn(self, request: web.Request) -> web.StreamResponse:
        """CloudFront: the signed URL must come back byte for byte, with no Runway header."""
        self.cdn_version_headers.append(request.headers.get("X-Runway-Version"))
        if str(request.rel_url) not in self.issued:
            self.cdn_stats.requests += 1
            return web.Response(status=403, text="<Error>AccessDenied</Error>")
        return await super()._serve_cdn(request)
