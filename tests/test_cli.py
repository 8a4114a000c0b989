"""The operator's command line (operations.md, "Command line"): `--version`, `serve --host/--port`,
`relay status`, which database a command uses, no new database made by a command run in the wrong
directory, no provider secrets needed to manage users and keys, one-line errors."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from relay import __version__, cli
from relay.config import Config
from relay.store import HealthChange, open_store
from tests.conftest import Relay, auth
from tests.test_serve import free_port, get, wait_for

KEY = "sk-test-cli-0123456789abcdef"


def write(tmp_path: Path, data_dir: Path, extra: str = "", port: int = 8080) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[server]\nport = {port}\ndata_dir = "{data_dir}"\n{extra}\n'
        '[[channels]]\nname = "demo"\nprovider = "demo"\nmodels = ["sora-2"]\nmax_in_flight = 4\n'
        '[[channels]]\nname = "vidu"\nprovider = "vidu"\nmodels = ["vidu-q1"]\n'
        'api_key = "${VIDU_API_KEY}"\n'
        '[[channels]]\nname = "old"\nprovider = "demo"\nmodels = ["old"]\nenabled = false\n'
    )
    return path


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "relay", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "/usr/bin"), **(env or {})},
        check=False,
        timeout=60,
    )


def test_version():
    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.startswith(f"relay {__version__} (Python 3.")


def test_serve_host_and_port_win_over_the_file(tmp_path: Path):
    port = free_port()
    conf = write(tmp_path, tmp_path / "data", port=free_port())
    proc = subprocess.Popen(
        [sys.executable, "-m", "relay", "serve", "--config", str(conf), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"PATH": "/usr/bin", "VIDU_API_KEY": "vk-0123456789"},
    )
    try:
        wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz", None)[0] == 200)
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["serve", "--port", "70000"], "argument --port: a port from 1 to 65535 (got '70000')"),
        (["serve", "--port", "x"], "argument --port: a port from 1 to 65535 (got 'x')"),
        (["users", "frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_a_bad_flag_is_one_line_and_exit_2(tmp_path: Path, args: list[str], problem: str):
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert problem in done.stderr
    assert "Traceback" not in done.stderr


def test_run_from_the_wrong_directory_no_database_is_made(tmp_path: Path):
    for args in (["users", "list"], ["keys", "list"], ["status"], ["users", "add", "carol"]):
        done = run(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        [line] = done.stderr.strip().splitlines()
        assert line.startswith(f"relay: no database at {tmp_path}/data/relay.db (no config file")
        assert not (tmp_path / "data").exists()


def test_users_and_keys_need_no_provider_secret_and_name_their_database(tmp_path: Path):
    conf = write(tmp_path, tmp_path / "data")
    done = run("users", "add", "carol", "--config", str(conf))  # VIDU_API_KEY is not set
    assert done.returncode == 0, done.stderr
    assert f"database: sqlite:///{tmp_path}/data/relay.db (config: {conf})" in done.stderr
    done = run("users", "list", "--config", str(conf))
    assert done.returncode == 0 and "carol" in done.stdout
    assert "database: sqlite:///" in done.stderr and "database" not in done.stdout
    # serving does need it, and says so
    done = run("check-config", "--offline", "--config", str(conf))
    assert done.returncode == 2
    assert "channels[1].api_key: environment variable VIDU_API_KEY is not set" in done.stderr


def test_a_store_url_needs_its_variable_all_the_same(tmp_path: Path):
    conf = write(tmp_path, tmp_path / "data", '[store]\nurl = "postgresql://r:${PGPASS}@h/db"\n')
    done = run("users", "list", "--config", str(conf))
    assert done.returncode == 2
    assert "store.url: environment variable PGPASS is not set" in done.stderr


def test_a_damaged_database_is_one_line(tmp_path: Path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "relay.db").write_bytes(b"not a database at all " * 200)
    done = run("users", "list", "--config", str(write(tmp_path, tmp_path / "data")))
    assert done.returncode == 1
    assert "damaged" in done.stderr and "Traceback" not in done.stderr


# --- relay status --------------------------------------------------------------------------


async def status(capsys: pytest.CaptureFixture[str], conf: Path) -> tuple[int, str, str]:
    code = await asyncio.to_thread(cli.main, ["status", "--config", str(conf)])
    out, err = capsys.readouterr()
    return code, out, err


async def test_status_shows_channels_in_flight_and_counts(
    tmp_path: Path,
    data_dir: Path,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    capsys: pytest.CaptureFixture[str],
):
    relay: Relay = await start_relay(
        make_config(
            channels=[
                {
                    "name": "demo",
                    "provider": "demo",
                    "models": ["sora-2"],
                    "max_in_flight": 4,
                    "options": {"finish_after_s": 60},
                }
            ]
        )
    )
    running = [await relay.create(), await relay.create()]
    assert running[0]["status"] in ("queued", "in_progress")
    now = time.time()
    await relay.store.publish_health(
        HealthChange(
            "vidu", "credentials", now + 900, "the upstream refused the key (HTTP 401)", "a1", now
        )
    )

    # a healthz that answers, on the port the config names
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        code, out, err = await status(capsys, write(tmp_path, data_dir, port=port))
    finally:
        await runner.cleanup()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"database: sqlite:///{data_dir}/relay.db (config: {tmp_path}/config.toml)"
    assert lines[1] == f"relay:    answering on http://127.0.0.1:{port}"
    [demo] = [line for line in lines if line.startswith("demo ")]
    assert demo.split()[1:4] == ["demo", "ready", "2/4"]
    [vidu] = [line for line in lines if line.startswith("vidu ")]
    # a clock time today, a date once the pause runs past midnight (as `relay status` shows it)
    stamp = time.localtime(now + 900)
    today = time.strftime("%Y-%m-%d", stamp) == time.strftime("%Y-%m-%d", time.localtime(now))
    until = time.strftime("%H:%M:%S" if today else "%Y-%m-%d %H:%M", stamp)
    assert f"credentials refused until {until}" in vidu
    assert "0/-" in vidu and "the upstream refused the key (HTTP 401)" in vidu
    [old] = [line for line in lines if line.startswith("old ")]
    assert "disabled (config)" in old
    words = lines[-1].split()
    assert words[0] == "tasks:"
    counts = dict(zip(words[1::2], (int(n) for n in words[2::2]), strict=True))
    assert counts["queued"] + counts["in_progress"] == 2
    assert counts["completed"] == counts["failed"] == 0
    assert "VIDU" not in out  # nothing of the secrets
    resp = await relay.client.get(f"/v1/videos/{running[0]['id']}", headers=auth())
    assert resp.status == 200


async def test_status_says_not_answering_and_a_past_pause_is_over(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
):
    store = await open_store(f"sqlite:///{data_dir / 'relay.db'}")
    try:
        await store.publish_health(HealthChange("demo", "cooling", 10.0, "HTTP 503 x3", "a1", 5.0))
    finally:
        await store.close()
    port = free_port()
    code, out, _ = await status(capsys, write(tmp_path, data_dir, port=port))
    assert code == 0
    assert f"relay:    not answering on http://127.0.0.1:{port}" in out
    [demo] = [line for line in out.splitlines() if line.startswith("demo ")]
    assert "ready (was cooling)" in demo and "HTTP 503 x3" in demo


def test_keys_list_shows_the_config_files_keys_by_name_never_their_values(tmp_path: Path):
    conf = write(
        tmp_path,
        tmp_path / "data",
        '[[keys]]\nname = "ci-bot"\nuser = "ci"\nkey = "${CI_KEY}"\n'
        '[[keys]]\nname = "ops"\nuser = "root"\nrole = "admin"\n'
        f'key_sha256 = "{"ab" * 32}"\n',
    )
    assert run("users", "add", "carol", "--config", str(conf)).returncode == 0
    created = run("keys", "create", "carol", "--name", "laptop", "--config", str(conf))
    assert created.returncode == 0
    secret = created.stdout.strip()
    done = run("keys", "list", "--config", str(conf), env={"CI_KEY": KEY})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["ID", "USER", "NAME", "PREFIX", "CREATED", "STATUS"]
    assert lines[1].split()[:3] == ["1", "carol", "laptop"] and lines[1].endswith("active")
    assert lines[2].split() == ["-", "ci", "ci-bot", "-", "-", "config", "(user)"]
    assert lines[3].split() == ["-", "root", "ops", "-", "-", "config", "(admin)"]
    assert KEY not in done.stdout and secret not in done.stdout and "ab" * 32 not in done.stdout
    mine = run("keys", "list", "ci", "--config", str(conf))  # CI_KEY unset: fine
    assert mine.returncode == 0 and [ln.split()[2] for ln in mine.stdout.splitlines()[1:]] == [
        "ci-bot"
    ]
