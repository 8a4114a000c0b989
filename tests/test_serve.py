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
