"""Logs: the line shapes (plain, journald, JSON), the level, access lines with the bytes really
sent, quiet health checks, state changes logged once, DEBUG decisions, and nothing secret at any
level. In-process where a record is enough; `relay serve` over real sockets for the rest."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request

from relay import logformat, logs
from relay.app import create_app
from relay.config import Config
from relay.domain import TaskRef
from relay.providers.base import Provider, Update
from relay.providers.errors import Unavailable
from tests.conftest import ALICE, Relay, auth
from tests.fakes.base import VIDEO, FakeUpstream
from tests.fakes.openai import FakeOpenAI
from tests.fakes.scripted import ScriptedProvider

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-logs-test-0123456789abcdef"


def access(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "relay.access"]


@pytest.fixture
async def serving(
    aiohttp_client: Callable[..., Any], providers: dict[str, type[Provider[Any]]]
) -> Callable[[Config], Any]:
    """A relay in-process with the access logger `relay serve` uses."""

    async def start(config: Config) -> Relay:
        server = TestServer(create_app(config, providers=providers), host="127.0.0.1")
        await server.start_server(access_log_class=logs.AccessLogger)
        return Relay(await aiohttp_client(server))

    return start


# --- line shapes ------------------------------------------------------------------------------


def record(level: int, message: str, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("relay.x", level, __file__, 1, message, (), exc_info)


def test_plain_lines_keep_their_timestamp():
    line = logformat.TextFormatter(journald=False).format(record(logging.WARNING, "careful"))
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING relay\.x \[-\] careful", line
    )


def test_journald_lines_start_with_the_priority_and_carry_no_time():
    fmt = logformat.TextFormatter(journald=True)
    for level, prefix in [(40, "<3>"), (30, "<4>"), (20, "<6>"), (10, "<7>")]:
        line = fmt.format(record(level, "news"))
        assert line == f"{prefix}{logging.getLevelName(level)} relay.x [-] news"
    trace = fmt.format(record(logging.ERROR, "failed", exc=True)).split("\n")
    assert len(trace) > 3 and all(line.startswith("<3>") for line in trace)  # -p err keeps it all
    assert trace[-1] == "<3>ValueError: boom"


def test_json_lines_are_one_object_each():
    line = logformat.JsonFormatter(journald=False).format(record(logging.ERROR, "failed", exc=True))
    assert "\n" not in line
    obj = json.loads(line)
    assert obj["level"] == "error" and obj["logger"] == "relay.x" and obj["message"] == "failed"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["time"])
    assert "ValueError: boom" in obj["exception"]
    under_systemd = logformat.JsonFormatter(journald=True).format(record(logging.WARNING, "w"))
    assert under_systemd.startswith("<4>{") and "time" not in json.loads(under_systemd[3:])


def test_journald_mode_needs_stderr_to_be_the_journal_stream(tmp_path: Path):
    with (tmp_path / "journal").open("w") as journal, (tmp_path / "other").open("w") as other:
        st = os.fstat(journal.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert logformat.journald_stream(journal, env)
        assert not logformat.journald_stream(other, env)  # a shell that inherited the variable
        assert not logformat.journald_stream(journal, {})
        assert not logformat.journald_stream(journal, {"JOURNAL_STREAM": "1"})


def test_the_level_comes_from_the_environment_first():
    assert logs.log_level("warning", {}) == logging.WARNING
    assert logs.log_level("warning", {"RELAY_LOG_LEVEL": "DEBUG"}) == logging.DEBUG
    from relay.errors import ConfigError

    with pytest.raises(ConfigError, match="RELAY_LOG_LEVEL: must be one of"):
        logs.log_level("info", {"RELAY_LOG_LEVEL": "loud"})


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """setup_logging changes process-wide state: put it back for the other tests."""
    root, relay, driver = (
        logging.getLogger(),
        logging.getLogger("relay"),
        logging.getLogger("aiosqlite"),
    )
    saved = (root.handlers[:], root.level, relay.level, driver.level)
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    relay.setLevel(saved[2])
    driver.setLevel(saved[3])


def test_debug_is_the_relays_own(restored_logging: None):
    out = io.StringIO()
    logs.setup_logging("debug", stream=out, env={})
    logging.getLogger("relay.tasks").debug("a decision")
    logging.getLogger("aiosqlite").debug("executing SELECT digest FROM keys")
    logging.getLogger("some.library").debug("chatter")
    logging.getLogger("some.library").info("worth a line")
    assert out.getvalue().count("\n") == 2
    assert "a decision" in out.getvalue() and "worth a line" in out.getvalue()


def test_scrub_masks_credentials_that_reach_a_message():
    line = logformat.scrub(
        "Authorization: Bearer abcdefgh12345678 key sk-live-0123456789abcdef "
        "url https://user:pw@cdn.example/v.mp4?sig=SECRET postgresql://relay:pw@db/relay "
        f"digest {hashlib.sha256(b'k').hexdigest()} jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"
    )
    for secret in ("abcdefgh1234", "sk-live", "user:pw", "SECRET", "relay:pw", "eyJ"):
        assert secret not in line
    assert hashlib.sha256(b"k").hexdigest() not in line
    assert "https://[redacted]@cdn.example/v.mp4?[redacted]" in line
    assert logformat.scrub("basic authentication failed") == "basic authentication failed"


# --- access lines -----------------------------------------------------------------------------


def line_of(caplog: pytest.LogCaptureFixture, path: str) -> list[str]:
    return [r.getMessage() for r in access(caplog) if f" {path} " in r.getMessage()]


async def test_a_stored_download_logs_its_real_size(
    serving: Callable[[Config], Any], make_config: Callable[..., Config], caplog: Any
):
    caplog.set_level(logging.INFO)
    relay: Relay = await serving(make_config())
    video = await relay.create()
    await relay.wait(video["id"])
    path = f"/v1/videos/{video['id']}/content"
    caplog.clear()
    assert await (await relay.client.get(path, headers=auth())).read() == VIDEO
    ranged = await relay.client.get(path, headers={**auth(), "Range": "bytes=0-99"})
    assert len(await ranged.read()) == 100
    await (await relay.client.head(path, headers=auth())).read()
    lines = line_of(caplog, path)
    assert [re.sub(r" [\d.]+ms$", "", line) for line in lines] == [
        f"127.0.0.1 GET {path} 200 {len(VIDEO)}",  # sendfile's bytes: 128637, not 389
        f"127.0.0.1 GET {path} 206 100",
        f"127.0.0.1 HEAD {path} 200 0",
    ]
    resp = await relay.client.get(f"/v1/videos/{video['id']}", headers=auth())
    assert line_of(caplog, f"/v1/videos/{video['id']}")[0].split()[4] == str(len(await resp.read()))


@pytest.fixture
async def cdn() -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream()
    await fake.start()
    yield fake
    await fake.close()


async def remote_video(
    serving: Callable[[Config], Any],
    make_config: Callable[..., Config],
    providers: dict[str, type[Provider[Any]]],
    cdn: FakeUpstream,
) -> tuple[Relay, str]:
    providers["scripted"] = ScriptedProvider
    channel = {
        "name": "scripted",
        "provider": "scripted",
        "models": ["sora-2"],
        "options": {"cdn_url": cdn.cdn_url("big.mp4")},
    }
    relay: Relay = await serving(make_config(channels=[channel]))
    video = await relay.create()
    await relay.wait(video["id"])
    return relay, video["id"]


async def test_a_proxied_download_logs_its_real_size(
    serving: Any, make_config: Any, providers: Any, cdn: FakeUpstream, caplog: Any
):
    caplog.set_level(logging.INFO)
    cdn.files["big.mp4"] = VIDEO
    relay, video_id = await remote_video(serving, make_config, providers, cdn)
    path = f"/v1/videos/{video_id}/content"
    caplog.clear()
    assert await (await relay.client.get(path, headers=auth())).read() == VIDEO
    ranged = await relay.client.get(path, headers={**auth(), "Range": "bytes=10-19"})
    assert await ranged.read() == VIDEO[10:20]
    lines = [re.sub(r" [\d.]+ms$", "", line) for line in line_of(caplog, path)]
    assert lines == [f"127.0.0.1 GET {path} 200 {len(VIDEO)}", f"127.0.0.1 GET {path} 206 10"]


async def test_a_download_cut_short_by_the_client_logs_what_went_out(
    serving: Any, make_config: Any, providers: Any, cdn: FakeUpstream, caplog: Any
):
    caplog.set_level(logging.INFO)
    size = 16 * 1024 * 1024
    cdn.files["big.mp4"] = VIDEO[:1024] + bytes(size - 1024)
    cdn.cdn.delay_s = 0.01
    relay, video_id = await remote_video(serving, make_config, providers, cdn)
    path = f"/v1/videos/{video_id}/content"
    caplog.clear()
    async with aiohttp.ClientSession() as session:
        resp = await session.get(relay.url(path), headers=auth())
        await resp.content.readexactly(256 * 1024)
        resp.close()  # the client goes away mid-body
    deadline = time.monotonic() + 5
    while not line_of(caplog, path):
        assert time.monotonic() < deadline, "no access line for the abandoned download"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    [line] = line_of(caplog, path)
    status, sent = line.split()[3:5]
    assert status == "200" and 256 * 1024 <= int(sent) < size


async def test_health_checks_are_debug_lines_and_queries_stay_out(
    serving: Callable[[Config], Any], make_config: Callable[..., Config], caplog: Any
):
    caplog.set_level(logging.INFO)
    relay: Relay = await serving(make_config())
    assert (await relay.client.get("/healthz")).status == 200
    await (await relay.client.get("/v1/videos?after=cursor-SECRET&limit=2", headers=auth())).read()
    assert not [r for r in access(caplog) if "/healthz" in r.getMessage()]
    assert [r.getMessage().split()[2] for r in access(caplog)] == ["/v1/videos"]
    assert "cursor-SECRET" not in caplog.text
    caplog.set_level(logging.DEBUG)
    await relay.client.get("/healthz")
    [health] = [r for r in access(caplog) if "/healthz" in r.getMessage()]
    assert health.levelno == logging.DEBUG and " 200 " in health.getMessage()


def test_metrics_scrapes_are_debug_lines_but_refusals_are_not(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG, logger="relay.access")
    logger = logs.AccessLogger(logging.getLogger("aiohttp.access"), "")
    for status in (200, 401):
        request = make_mocked_request("GET", "/metrics?x=1", app=web.Application())
        logger.log(request, web.Response(status=status), 0.001)
    assert [(r.levelno, r.getMessage().split()[3]) for r in access(caplog)] == [
        (logging.DEBUG, "200"),
        (logging.INFO, "401"),
    ]


# --- state changes once, decisions at DEBUG ----------------------------------------------------


class FlakyProvider(ScriptedProvider):
    """Polls fail the same way three times, then another way once, then the job completes."""

    name = "flaky"
    errors = ["HTTP 503", "HTTP 503", "HTTP 503", "a timeout"]

    async def poll(self, task: TaskRef) -> Update:
        if self.errors:
            raise Unavailable(f"the upstream failed: {self.errors.pop(0)}")
        return Update(status="completed")


async def test_a_failing_poll_is_logged_when_its_error_changes(
    start_relay: Any, make_config: Any, providers: Any, caplog: Any
):
    caplog.set_level(logging.DEBUG)
    providers["flaky"] = FlakyProvider
    relay: Relay = await start_relay(
        make_config(channels=[{"name": "flaky", "provider": "flaky", "models": ["sora-2"]}])
    )
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    info = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.INFO and r.name.startswith("relay.tasks")
    ]
    vid = video["id"]
    assert info == [
        f"task {vid}: polls fail (Unavailable: the upstream failed: HTTP 503); retrying, "
        "logged again when this changes",
        f"task {vid}: polls fail (Unavailable: the upstream failed: a timeout); retrying, "
        "logged again when this changes",
        f"task {vid}: polls answer again",
        f"task {vid} completed",
    ]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert f"task {vid}: model sora-2 routed to channel flaky" in debug
    assert sum(m.startswith(f"task {vid}: next poll in ") for m in debug) == 4
    assert any("(the poll failed: Unavailable)" in m for m in debug)


# --- relay serve over real sockets --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def relay_serve(
    tmp_path: Path, extra: str = "", server: str = "", **env: str
) -> Iterator[tuple[int, Path, subprocess.Popen[bytes]]]:
    port = free_port()
    conf = tmp_path / "config.toml"
    conf.write_text(
        f'[server]\nport = {port}\ndata_dir = "{tmp_path / "data"}"\n{server}\n'
        f'[[keys]]\nname = "t"\nkey = "{KEY}"\nuser = "tester"\n\n'
        + (extra or '[[channels]]\nname = "demo"\nprovider = "demo"\nmodels = ["sora-2"]\n')
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "relay", "serve", "--config", str(conf)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", **env},
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        yield port, log, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_json_lines_and_the_environment_level_in_relay_serve(tmp_path: Path):
    server = 'log_format = "json"\nlog_level = "warning"'
    with relay_serve(tmp_path, server=server, RELAY_LOG_LEVEL="debug") as (port, log, proc):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {KEY}"}
        )
        body = urllib.request.urlopen(request, timeout=5).read()
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "config reloaded" not in log.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    [models] = [o for o in lines if o.get("path") == "/v1/models"]
    assert models["level"] == "info" and models["method"] == "GET" and models["status"] == 200
    assert models["bytes"] == len(body) and models["client"] == "127.0.0.1"
    assert models["request_id"].startswith("req_") and models["duration_ms"] >= 0
    assert any(o.get("path") == "/healthz" and o["level"] == "debug" for o in lines)  # env wins
    assert sum("config reloaded" in o["message"] for o in lines) == 1
    assert KEY not in log.read_text()


def test_a_bad_log_level_is_one_line(tmp_path: Path):
    conf = tmp_path / "config.toml"
    conf.write_text(
        f'[server]\ndata_dir = "{tmp_path}"\n\n'
        '[[channels]]\nname = "demo"\nprovider = "demo"\nmodels = ["sora-2"]\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "relay", "serve", "--config", str(conf)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "RELAY_LOG_LEVEL": "loud"},
        timeout=30,
    )
    assert done.returncode == 2
    assert "RELAY_LOG_LEVEL: must be one of debug, info, warning, error (got 'loud')" in done.stderr
    assert "Traceback" not in done.stderr


TOKEN = "sk-parser-probe-0123456789abcdef"
MALFORMED = {
    "bad request line": b"GARBAGE\r\n\r\n",
    "NUL in a header": b"GET /v1/models HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
    + TOKEN.encode()
    + b"\x00x\r\n\r\n",
    "CR in a header": b"GET /v1/models HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
    + TOKEN.encode()
    + b"\rx\r\n\r\n",
    "duplicate Host": b"GET /v1/models HTTP/1.1\r\nHost: a\r\nHost: b\r\nAuthorization: Bearer "
    + TOKEN.encode()
    + b"\r\n\r\n",
    "Content-Length with Transfer-Encoding": b"POST /v1/videos HTTP/1.1\r\nHost: a\r\n"
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer "
    + TOKEN.encode()
    + b"\r\n\r\n0\r\n\r\n",
    "a header over the limit": b"GET /v1/models HTTP/1.1\r\nHost: a\r\nX-Pad: "
    + b"p" * 20_000
    + b"\r\nAuthorization: Bearer "
    + TOKEN.encode()
    + b"\r\n\r\n",
    "a 10,000-character id": b"GET /v1/videos/" + b"v" * 10_000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    "an oversized token": b"GET /v1/models HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
    + TOKEN.encode()
    + b"t" * 20_000
    + b"\r\n\r\n",
}


def test_parser_refusals_are_one_access_line_each(tmp_path: Path):
    with relay_serve(tmp_path) as (port, log, _):
        for name, data in MALFORMED.items():
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(data)
                answer = conn.recv(65536)
            assert answer.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400")), (name, answer[:80])
        deadline = time.monotonic() + 5
        while log.read_text().count(" 400 ") < len(MALFORMED):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert resp.status == 200  # and the relay goes on
    text = log.read_text()
    refused = [line for line in text.splitlines() if " 400 " in line]
    assert len(refused) == len(MALFORMED)
    for line in refused:
        assert re.search(r"INFO relay\.access \[req_[0-9a-f]{24}\] 127\.0\.0\.1 - \(refused", line)
    assert "Traceback" not in text and "Error handling request" not in text
    assert "match_info" not in text
    assert "parser-probe" not in text and "Bearer" not in text and "ppppp" not in text


async def test_nothing_secret_is_logged_at_debug(tmp_path: Path):
    """A session at DEBUG against an upstream that signs its result URLs: create, poll,
    download, list, a wrong key; the log holds none of the keys, digests or signed URLs, and
    no SQL statement."""
    fake = FakeOpenAI()
    await fake.start()
    try:
        base = fake.base_url
        extra = (
            f'[[channels]]\nname = "openai"\nprovider = "openai"\nbase_url = "{base}/v1"\n'
            f'api_key = "{fake.api_key}"\nmodels = ["sora-2"]\n\n'
            "[polling]\ninterval_s = 0.1\nmax_interval_s = 0.2\n\n"
            "[storage]\nkeep_videos = false\n"  # the download goes through the upstream
        )
        server = "allow_private_networks = true"
        loop = asyncio.get_running_loop()
        with relay_serve(tmp_path, extra=extra, server=server, RELAY_LOG_LEVEL="debug") as (
            port,
            log,
            _,
        ):
            url = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as s:
                created = await (await s.post(f"{url}/v1/videos", json={"prompt": "a"})).json()
                video_id = created["id"]
                for _ in range(200):
                    got = await (await s.get(f"{url}/v1/videos/{video_id}")).json()
                    if got["status"] == "completed":
                        break
                    await asyncio.sleep(0.05)
                assert got["status"] == "completed", got
                content = await s.get(f"{url}/v1/videos/{video_id}/content")
                assert await content.read() == VIDEO
                await (await s.get(f"{url}/v1/videos")).read()
                wrong = {"Authorization": "Bearer sk-wrong-key-0123456789abcdef"}
                assert (await s.get(f"{url}/v1/videos", headers=wrong)).status == 401
            await loop.run_in_executor(None, time.sleep, 0.2)
        text = log.read_text()
    finally:
        await fake.close()
    signed = [c for c in fake.requests if "content" in c.path]
    assert signed, "the download went through the upstream"
    secrets = [
        KEY,
        hashlib.sha256(KEY.encode()).hexdigest(),
        fake.api_key,
        hashlib.sha256(fake.api_key.encode()).hexdigest(),
        "sk-wrong-key",
        "sig=",
        ALICE,
    ]
    for secret in secrets:
        assert secret not in text, secret
    assert "routed to channel openai" in text and "next poll in" in text  # DEBUG is on
    assert not re.search(r"\b(SELECT|INSERT|UPDATE)\b", text)  # no SQL driver statements
    assert f"GET /v1/videos/{video_id}/content 200 {len(VIDEO)} " in text
