"""Upstream text reaching clients and logs (issue 11, item 3): an upstream that answers with an
HTML error page holding a Python traceback, server paths, an internal URL and a key must leave
no trace of them in what a client reads (an error envelope, a failed video's `error`) or in an
INFO/WARNING log line; a DEBUG line may keep a capped excerpt with URLs and secrets masked.

Black-box through a real relay against every provider's fake (a create that fails, polls that
fail, a content download that fails), plus failed tasks whose native reason is such a page, plus
the scrubber's rules one by one."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from relay.config import Config
from relay.errors import safe_message
from relay.providers import REGISTRY
from relay.providers.errors import ProviderError, Rejected, Unavailable, native_text
from relay.scrub import log_excerpt
from tests.conftest import Relay, auth
from tests.fakes import fake_class
from tests.fakes.base import FakeUpstream
from tests.fakes.compat_relay import FakeCompatRelay
from tests.fakes.openai import FakeOpenAI

NETWORK = sorted(name for name, cls in REGISTRY.items() if cls.needs_network)

SECRET_KEY = "sk-live-0123456789abcdef0123"
SECRET_TOKEN = "tok_9f8e7d6c5b4a39281706"
INTERNAL_HOST = "status.internal.example"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/videogen/app/server.py", line 212, in create_job\n'
    "    db.execute(INSERT_JOB, job)\n"
    '  File "/srv/videogen/app/db.py", line 88, in execute\n'
    "    return self.conn.execute(sql, params)\n"
    "sqlite3.OperationalError: database is locked\n"
)
PAGE = (
    "<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title>"
    "<style>body { font-family: monospace }</style></head><body>\n"
    "<h1>Internal Server Error</h1>\n"
    f"<p>Worker failed (api_key={SECRET_KEY}); see "
    f"https://{INTERNAL_HOST}/incidents?token={SECRET_TOKEN}</p>\n"
    f"<pre>{TRACEBACK.replace('<', '&lt;')}</pre>\n</body></html>\n"
)
# what must never reach a client or an INFO+ line
LEAKS = (
    "Traceback",
    'File "',
    "/srv/",
    "sqlite3",
    "OperationalError",
    "<html",
    "<pre",
    "<h1",
    "</",
    "&lt;",
    INTERNAL_HOST,
    SECRET_TOKEN,
    SECRET_KEY,
)
# what must never reach even a DEBUG line
SECRETS = (INTERNAL_HOST, SECRET_TOKEN, SECRET_KEY)


def assert_clean(text: str, limit: int = 300) -> None:
    assert text, "an empty message"
    found = [leak for leak in LEAKS if leak in text]
    assert not found, f"{found} in {text!r}"
    assert "\n" not in text and len(text) <= limit, text


def assert_logs_clean(logs: pytest.LogCaptureFixture) -> list[str]:
    """No INFO+ line holds anything of the page; DEBUG lines hold no URL or secret and are
    capped. Returns the DEBUG lines of the relay's own loggers."""
    debug = []
    for record in logs.records:
        line = record.getMessage()
        if record.levelno >= logging.INFO:
            found = [leak for leak in LEAKS if leak in line]
            assert not found, f"{found} in {record.levelname} {record.name}: {line!r}"
        else:
            assert not [s for s in SECRETS if s in line], line
            if record.name.startswith("relay"):
                assert "\n" not in line and len(line) <= 700, line
                debug.append(line)
    return debug


def breaking(cls: type[FakeUpstream]) -> type[FakeUpstream]:
    """The provider's fake, answering every request (API and CDN alike) with the HTML page
    while `broken` is set."""

    class Breaking(cls):  # type: ignore[valid-type,misc]
        broken = False
        hits = 0

        @web.middleware
        async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
            if self.broken:
                self.hits += 1
                return web.Response(status=500, text=PAGE, content_type="text/html")
            return await super()._record(request, handler)  # type: ignore[no-any-return]

    return Breaking


@pytest.fixture(params=NETWORK)
async def broken_upstream(
    request: pytest.FixtureRequest,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
) -> AsyncIterator[tuple[Relay, Any]]:
    fake = breaking(fake_class(request.param))()
    channel = fake.channel(await fake.start())
    relay: Relay = await start_relay(make_config(channels=[channel]))
    yield relay, fake
    await fake.close()


async def eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


# --- through the relay, every provider -----------------------------------------------------


async def test_a_create_the_upstream_answers_with_an_error_page(
    broken_upstream: tuple[Relay, Any], logs: pytest.LogCaptureFixture
):
    relay, fake = broken_upstream
    fake.broken = True
    resp = await relay.client.post(
        "/v1/videos", json={"prompt": "a lighthouse in fog"}, headers=auth()
    )
    body = await resp.json()
    assert fake.hits >= 1
    if resp.status == 200:  # the upstream may have made the job: failed, not retried
        assert body["status"] == "failed", body
        error = body["error"]
        assert_clean((await relay.get(body["id"]))["error"]["message"])
    else:
        assert resp.status == 502, body
        error = body["error"]
    assert error["code"] == "upstream_error"
    assert_clean(error["message"])
    debug = assert_logs_clean(logs)
    # the operator can still see what the upstream said, at DEBUG, scrubbed
    assert any("HTTP 500" in line and "Internal Server Error" in line for line in debug), debug


async def test_polls_the_upstream_answers_with_an_error_page(
    broken_upstream: tuple[Relay, Any], logs: pytest.LogCaptureFixture
):
    relay, fake = broken_upstream
    video = await relay.create(prompt="a lighthouse in fog")
    fake.broken = True
    hits = fake.hits
    await eventually(lambda: fake.hits >= hits + 2)
    fake.broken = False
    done = await relay.wait(video["id"])
    if done["error"] is not None:
        assert_clean(done["error"]["message"])
    lines = [r.getMessage() for r in logs.records if r.levelno >= logging.INFO]
    assert any("HTTP 500" in line for line in lines), lines  # the operator sees the status
    debug = assert_logs_clean(logs)
    assert any("Internal Server Error" in line for line in debug), debug


async def test_a_content_download_the_upstream_answers_with_an_error_page(
    broken_upstream: tuple[Relay, Any], logs: pytest.LogCaptureFixture
):
    relay, fake = broken_upstream
    video = await relay.create(prompt="a lighthouse in fog")
    assert (await relay.wait(video["id"]))["status"] == "completed"
    fake.broken = True
    resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    body = await resp.json()
    assert resp.status == 502, body
    assert body["error"]["code"] == "upstream_error"
    assert_clean(body["error"]["message"])
    assert_logs_clean(logs)


# --- a task the upstream failed with such a page as its reason ------------------------------


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def gateway_fake() -> AsyncIterator[FakeCompatRelay]:
    fake = FakeCompatRelay()
    await fake.start()
    yield fake
    await fake.close()


@pytest.mark.parametrize("reason", [TRACEBACK, PAGE], ids=["traceback", "page"])
async def test_a_failed_video_whose_reason_is_a_traceback(
    openai_fake: FakeOpenAI,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    logs: pytest.LogCaptureFixture,
    reason: str,
):
    relay: Relay = await start_relay(
        make_config(channels=[openai_fake.channel(openai_fake.base_url)])
    )
    video = await relay.create(prompt="a lighthouse in fog")
    await eventually(lambda: bool(openai_fake.videos))
    (upstream_id,) = openai_fake.videos
    failed = {
        "id": upstream_id,
        "object": "video",
        "status": "failed",
        "error": {"code": "internal_error", "message": reason},
    }
    for _ in range(3):
        openai_fake.fail_next("retrieve", 200, failed)
    done = await relay.wait(video["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "generation_failed"
    message = done["error"]["message"]
    assert_clean(message)
    assert message.startswith("internal_error"), message  # the native code stays
    if reason is PAGE:
        assert "Internal Server Error" in message  # and the readable part of the message
    assert_logs_clean(logs)


async def test_a_gateway_task_failed_with_its_backends_error_page(
    gateway_fake: FakeCompatRelay,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    logs: pytest.LogCaptureFixture,
):
    relay: Relay = await start_relay(
        make_config(channels=[gateway_fake.channel(gateway_fake.base_url)])
    )
    video = await relay.create(prompt="a lighthouse in fog")
    await eventually(lambda: bool(gateway_fake.tasks))
    (task_id,) = gateway_fake.tasks
    failed = {"id": task_id, "task_id": task_id, "status": "failed", "error": {"message": PAGE}}
    for _ in range(3):
        gateway_fake.fail_next("retrieve", 200, failed)
    done = await relay.wait(video["id"])
    assert done["status"] == "failed", done
    assert_clean(done["error"]["message"])
    assert_logs_clean(logs)


# --- the provider error: its message, its log text, its DEBUG excerpt ------------------------


def test_a_provider_error_cleans_its_message_and_keeps_the_body_out_of_for_log():
    exc = Unavailable(f"the upstream answered HTTP 500: {TRACEBACK}", detail=f"HTTP 500: {PAGE}")
    assert exc.message == "the upstream answered HTTP 500"
    assert exc.for_log == "the upstream answered HTTP 500"
    excerpt = exc.excerpt
    assert excerpt.startswith("HTTP 500: 500 Internal Server Error")
    assert "Traceback" in excerpt and "\n" not in excerpt and len(excerpt) <= 500
    assert not [s for s in SECRETS if s in excerpt] and "<url>" in excerpt


def test_for_log_names_the_kind_of_answer():
    assert Unavailable("HTTP 502", detail=f"HTTP 502: {PAGE}").for_log == "HTTP 502"
    assert (
        Unavailable("the upstream failed", detail=f"HTTP 503: {PAGE}").for_log
        == "the upstream failed (HTTP 503)"
    )
    assert (
        Unavailable(
            "could not connect to the upstream",
            detail="ClientConnectorError: [Errno 111] Connect call failed ('10.0.0.7', 8443)",
        ).for_log
        == "could not connect to the upstream (ClientConnectorError)"
    )
    assert Unavailable("the upstream failed", detail="submit state failed").for_log == (
        "the upstream failed"
    )
    assert Unavailable("x").excerpt == ""


def test_a_message_with_nothing_readable_left_says_so():
    assert ProviderError(TRACEBACK).message == "the upstream gave no readable reason"
    assert Rejected("<html><body></body></html>").message == "the upstream gave no readable reason"


def test_native_text_takes_only_strings():
    assert native_text(None) == native_text(42) == native_text({"a": 1}) == ""
    assert native_text("  bad   image\n") == "bad image"
    assert len(native_text("x" * 1000)) <= 200


# --- the scrubber's rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<b>Invalid</b> <i>size</i>", "Invalid size"),
        ("&lt;script&gt;alert(1)&lt;/script&gt; bad prompt", "alert(1) bad prompt"),
        ("<script>var k = 1;</script><style>p{}</style>Bad Gateway", "Bad Gateway"),
        ("<!-- build 42 -->Service Unavailable", "Service Unavailable"),
        ("size must be <= 1920 and > 0", "size must be <= 1920 and > 0"),
        ("database is locked\n" + TRACEBACK, "database is locked"),
        ("failed (" + TRACEBACK + ")", "failed"),
        (
            "the upstream failed (InternalError: " + TRACEBACK + ")",
            "the upstream failed (InternalError)",
        ),
        ("sqlite3.OperationalError: database is locked", "database is locked"),
        (
            "java.lang.IllegalStateException: queue full\n"
            "\tat com.vid.Queue.<init>(Queue.java:42)\n\tat com.vid.Api.create(Api.java:7)",
            "queue full",
        ),
        (
            "Error: boom\n    at Object.<anonymous> (/srv/app/index.js:10:5)\n"
            "    at Module._compile (node:internal/modules/cjs/loader:1105:14)",
            "Error: boom",
        ),
        (
            "panic: nil map\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:5",
            "panic: nil map",
        ),
        (
            "PHP Fatal error: oops in /var/www/api.php:12\nStack trace:\n#0 /var/www/x.php(3)",
            "PHP Fatal error: oops in <path>",
        ),
        ("cannot open /var/lib/videogen/jobs.db", "cannot open <path>"),
        ("cannot open C:\\srv\\videogen\\jobs.db", "cannot open <path>"),
        ("error in app/handlers/video.py:88", "error in <path>"),
        ("models/veo-3.0-generate-001 is not found", "models/veo-3.0-generate-001 is not found"),
        (
            "see https://cdn.example.com/v.mp4?X-Amz-Signature=abc for details",
            "see <url> for details",
        ),
        ("bucket s3://private-bucket/key is gone", "bucket <url> is gone"),
        ("bad key sk-proj-abcdef123456 given", "bad key sk-*** given"),
        ("bad key xai-Zk3abcdef123456 given", "bad key xai-*** given"),
        ("bad key key_0f3c9a1e5b7d2c4e6f8a0b1c given", "bad key key_*** given"),
        ("key_frames must be a list", "key_frames must be a list"),
        ("invalid api key sk-api-Q7vLm2x9Rk4pT8wZ given", "invalid api key sk-*** given"),
        ("Authorization: Bearer abcdefgh12345678 refused", "Authorization: Bearer *** refused"),
        ("Invalid token provided", "Invalid token provided"),
        ("token: 8f1c2e3d4b5a6978 expired", "token: *** expired"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig_nature expired", "token *** expired"),
        ('{"api_key": "ak-77f0a9c3e1d2"} invalid', '{"api_key": "***"} invalid'),
        (
            "Invalid signature: the request was not signed",
            "Invalid signature: the request was not signed",
        ),
        ("(psycopg2.errors.UniqueViolation) duplicate [SQL: INSERT INTO jobs]", "duplicate"),
        ("object at 0x7f3a2b1c9d40 failed", "object at failed"),
        ("视频生成失败：内容不合规 (1301)", "视频生成失败：内容不合规 (1301)"),  # noqa: RUF001
        ("Ungültige Größe für das Video", "Ungültige Größe für das Video"),
        ("line one\r\nline two\x00\x1b[31m\u202eevil\x1b[0m", "line one line twoevil"),
        ("  many    spaces\t\there ", "many spaces here"),
        ("", ""),
        (TRACEBACK, ""),
    ],
)
def test_safe_message(text: str, expected: str):
    assert safe_message(text) == expected
    assert safe_message(expected) == expected  # a cleaned text passes through unchanged


def test_safe_message_caps_the_length_at_a_word():
    text = "the upstream rejected the prompt because " + "it was far too long " * 40
    cleaned = safe_message(text, limit=120)
    assert len(cleaned) <= 120 and cleaned.endswith("...")
    assert cleaned[:-3].endswith(("long", "too", "far", "was", "it"))
    assert safe_message(cleaned, limit=120) == cleaned
    assert len(safe_message("字" * 1000)) == 300  # no spaces: cut where the limit falls


def test_safe_message_closes_a_bracket_the_cap_left_open():
    cleaned = safe_message("quota exceeded (" + "details " * 100 + ")", limit=60)
    assert cleaned.endswith("...)") and len(cleaned) <= 60
    assert safe_message(cleaned, limit=60) == cleaned


def test_safe_message_never_splits_a_mark():
    cleaned = safe_message("x" * 55 + " https://example.com/a", limit=60)
    assert "<u" not in cleaned.replace("<url>", "") and len(cleaned) <= 60


def test_safe_message_is_quick_on_hostile_input():
    import time

    for text in ("a." * 500_000, "<a" * 500_000, "/a" * 500_000, "a" * 1_000_000 + TRACEBACK):
        started = time.perf_counter()
        assert len(safe_message(text)) <= 300
        assert time.perf_counter() - started < 0.5


def test_a_log_excerpt_keeps_the_traceback_but_no_url_or_secret():
    excerpt = log_excerpt(PAGE)
    assert excerpt.startswith("500 Internal Server Error Internal Server Error Worker failed")
    assert "Traceback (most recent call last)" in excerpt and "/srv/videogen" in excerpt
    assert not [s for s in SECRETS if s in excerpt]
    assert "<url>" in excerpt and "api_key=sk-***" in excerpt
    assert "\n" not in excerpt and not re.search(r"<(?!url>)", excerpt)
    assert len(log_excerpt("y" * 10_000)) <= 500
