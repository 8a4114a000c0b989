"""`relay serve` as a process: start, answer, reload on SIGHUP, stop cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEY = "sk-serve-test-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, port: int, data_dir: Path, models: str) -> None:
    path.write_text(
        f"""
[server]
port = {port}
data_dir = "{data_dir}"

[[keys]]
name = "t"
key = "${{TEST_RELAY_KEY}}"
user = "tester"

[[channels]]
name = "demo"
provider = "demo"
models = {models}
"""
    )


def get(url: str, key: str | None = KEY) -> tuple[int, Any]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError):
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_serve_reload_and_stop(tmp_path: Path):
    port = free_port()
    conf = tmp_path / "config.toml"
    write_config(conf, port, tmp_path / "data", '["sora-2"]')
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "relay", "serve", "--config", str(conf)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={"TEST_RELAY_KEY": KEY, "PATH": "/usr/bin"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(f"{base}/healthz", None)[0] == 200)
        status, body = get(f"{base}/v1/models")
        assert status == 200 and [m["id"] for m in body["data"]] == ["sora-2"]

        write_config(conf, port, tmp_path / "data", '["sora-2", "extra"]')
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(get(f"{base}/v1/models")[1]["data"]) == 2)

        conf.write_text("this is = not [valid")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in (tmp_path / "serve.log").read_text())
        assert len(get(f"{base}/v1/models")[1]["data"]) == 2  # the old table stays

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    text = (tmp_path / "serve.log").read_text()
    assert KEY not in text
    assert "stopped" in text


def test_check_config_command(tmp_path: Path):
    conf = tmp_path / "config.toml"
    write_config(conf, 8080, tmp_path / "data", '["sora-2"]')
    ok = subprocess.run(
        [sys.executable, "-m", "relay", "check-config", "--config", str(conf)],
        capture_output=True,
        text=True,
        env={"TEST_RELAY_KEY": KEY},
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "relay", "check-config", "--config", str(conf)],
        capture_output=True,
        text=True,
        env={},
        check=False,
    )
    assert bad.returncode == 2
    assert "keys[0].key: environment variable TEST_RELAY_KEY is not set" in bad.stderr


def test_client_address_honours_the_proxy_only_when_trusted(tmp_path: Path):
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from relay.config import parse
    from relay.logs import TRUST_PROXY, client_address

    for trusted in (True, False):
        app = web.Application()
        app[TRUST_PROXY] = parse(
            {
                "server": {"trust_proxy": trusted, "data_dir": str(tmp_path)},
                "channels": [{"name": "d", "provider": "demo", "models": ["sora-2"]}],
            },
            env={},
        ).server.trust_proxy
        request = make_mocked_request(
            "GET", "/healthz", headers={"X-Forwarded-For": "203.0.113.7, 10.0.0.1"}, app=app
        )
        assert (client_address(request) == "203.0.113.7") is trusted


def _start_fails(tmp_path: Path, port: int) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    write_config(config, port, tmp_path / "data", '["sora-2"]')
    return subprocess.run(
        [sys.executable, "-m", "relay", "serve", "--config", str(config)],
        env={"TEST_RELAY_KEY": KEY, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_damaged_database_stops_the_start_with_one_line(tmp_path: Path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "relay.db").write_bytes(b"this is not a database file at all" * 100)
    started = time.monotonic()
    done = _start_fails(tmp_path, free_port())
    assert done.returncode != 0
    assert time.monotonic() - started < 20  # it exits: no process left hanging, alive and deaf
    errors = [line for line in done.stderr.splitlines() if line.startswith("relay:")]
    assert len(errors) == 1 and "could not start" in errors[0]
    assert "not a database" in errors[0]
    assert "Traceback" not in done.stderr


def test_a_port_in_use_stops_the_start_with_one_line(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = _start_fails(tmp_path, taken.getsockname()[1])
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("relay:")]
    assert len(errors) == 1 and "could not start" in errors[0]
    assert "Traceback" not in done.stderr


# --- SIGTERM: the grace for requests in flight ------------------------------------------------


def upstream_config(path: Path, port: int, data_dir: Path, base_url: str, api_key: str) -> None:
    path.write_text(
        f"""
[server]
port = {port}
data_dir = "{data_dir}"
allow_private_networks = true

[polling]
interval_s = 0.05
max_interval_s = 0.2

[storage]
keep_videos = false

[[keys]]
name = "t"
key = "{KEY}"
user = "tester"

[[channels]]
name = "openai"
provider = "openai"
base_url = "{base_url}/v1"
api_key = "{api_key}"
models = ["sora-2"]
"""
    )


@dataclass
class Stopped:
    """What one stop of a relay serving two slow downloads looked like."""

    code: int | None = None
    took: float = 0.0  # from the first SIGTERM to the exit
    short_body: bytes = b""  # the thumbnail, 1 s of download
    long_cut: bool = False  # the video (16 s of download) ended short
    log: str = ""


async def stop_during_downloads(tmp_path: Path, signals: int) -> Stopped:
    """A relay as a process, a fake upstream whose CDN sends 1 KiB every 0.3 s, two downloads
    started, then `signals` SIGTERMs (the second 1 s after the first)."""
    import asyncio

    import aiohttp

    from tests.fakes.openai import FakeOpenAI

    upstream = FakeOpenAI()
    base_url = await upstream.start()
    port = free_port()
    conf = tmp_path / "config.toml"
    upstream_config(conf, port, tmp_path / "data", base_url, upstream.api_key)
    log_path = tmp_path / "serve.log"
    log = log_path.open("w")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "relay", "serve", "--config", str(conf),
        stdout=log, stderr=subprocess.STDOUT, env={"PATH": "/usr/bin"},
    )  # fmt: skip
    relay = f"http://127.0.0.1:{port}"
    loop = asyncio.get_running_loop()
    stopped = Stopped()
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as session:
            for _ in range(300):
                try:
                    async with session.get(f"{relay}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
            async with session.post(f"{relay}/v1/videos", json={"prompt": "a slow one"}) as resp:
                video = await resp.json()
                assert resp.status == 200, video
            for _ in range(200):
                async with session.get(f"{relay}/v1/videos/{video['id']}") as resp:
                    if (await resp.json())["status"] == "completed":
                        break
                await asyncio.sleep(0.05)
            upstream.cdn.chunk, upstream.cdn.delay_s = 1024, 0.3  # the thumbnail: about 1 s
            content = f"{relay}/v1/videos/{video['id']}/content"
            long = await session.get(content)
            assert long.status == 200
            await long.content.readexactly(4096)
            short = await session.get(content, params={"variant": "thumbnail"})
            assert short.status == 200

            proc.send_signal(signal.SIGTERM)
            first = loop.time()
            if signals > 1:
                await asyncio.sleep(1.0)
                proc.send_signal(signal.SIGTERM)
            stopped.code = await asyncio.wait_for(proc.wait(), 30)
            stopped.took = loop.time() - first
            try:
                stopped.short_body = await short.read()
            except aiohttp.ClientPayloadError:
                stopped.short_body = b""
            try:
                await long.read()
                stopped.long_cut = False
            except aiohttp.ClientPayloadError:
                stopped.long_cut = True
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()
        await upstream.close()
    stopped.log = log_path.read_text()
    return stopped


async def test_sigterm_gives_downloads_in_flight_10_s_then_exits_0(tmp_path: Path):
    from relay.providers.demo import ASSETS

    stopped = await stop_during_downloads(tmp_path, signals=1)
    assert stopped.code == 0, stopped.log
    assert 9.5 <= stopped.took <= 13.0, (stopped.took, stopped.log)
    # a request that ends within the grace ends whole; the one that cannot is cut short
    assert stopped.short_body == (ASSETS / "thumbnail.webp").read_bytes()
    assert stopped.long_cut
    assert "stopping: 2 requests in flight get up to 10 s" in stopped.log
    assert "stopping: cutting 1 requests still running" in stopped.log
    assert "Traceback" not in stopped.log


async def test_a_second_sigterm_ends_the_grace(tmp_path: Path):
    stopped = await stop_during_downloads(tmp_path, signals=2)
    assert stopped.code == 0, stopped.log
    assert 0.9 <= stopped.took <= 3.0, (stopped.took, stopped.log)
    assert stopped.long_cut
    assert "Traceback" not in stopped.log


def test_sigterm_with_nothing_in_flight_exits_at_once(tmp_path: Path):
    port = free_port()
    conf = tmp_path / "config.toml"
    write_config(conf, port, tmp_path / "data", '["sora-2"]')
    proc = subprocess.Popen(
        [sys.executable, "-m", "relay", "serve", "--config", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"TEST_RELAY_KEY": KEY, "PATH": "/usr/bin"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(f"{base}/healthz", None)[0] == 200)
        # an idle keep-alive connection, and one whose request head never completes
        idle = socket.create_connection(("127.0.0.1", port))
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
        assert idle.recv(65536).startswith(b"HTTP/1.1 200")
        half = socket.create_connection(("127.0.0.1", port))
        half.sendall(b"GET /healthz HTTP/1.1\r\nHost: rel")
        time.sleep(0.2)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        took = time.monotonic() - started
        idle.close()
        half.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0
    assert took < 1.0, took
