"""The README's quick start, as written: `relay serve` on the embedded defaults in a fresh
directory, then its curl and SDK examples."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
ASSETS = ROOT / "relay" / "providers" / "assets"
VIDEO = (ASSETS / "video.mp4").read_bytes()  # the demo's portrait clip, the default 720x1280
LANDSCAPE = (ASSETS / "video-landscape.mp4").read_bytes()  # what size=1280x720 gets


def example(name: str) -> str:
    match = re.search(rf"<!-- example: {name} -->\n```\w+\n(.*?)```", README, re.S)
    assert match, f"README has no example {name!r}"
    return match.group(1)


def test_readme_opens_with_the_two_commands():
    commands = re.findall(r"```bash\n(.*?)```", README, re.S)[:2]
    assert "relay serve" in commands[0] and "pip install -e ." in commands[0]
    assert "pytest" in commands[1] and "'.[test]'" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install --quiet -e '.[test]'" in ci and ".venv/bin/pytest" in ci


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.skipif(shutil.which("curl") is None, reason="the curl example needs curl")
def test_quick_start_examples_work_as_written(tmp_path: Path):
    if not port_free(8080):
        pytest.skip("port 8080 is taken on this machine; the README uses it")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "relay", "serve"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:8080/healthz", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.1)
        curl = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", example("curl")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert curl.returncode == 0, curl.stderr
        assert curl.stdout.split()[-1] == "completed"
        assert (tmp_path / "video.mp4").read_bytes() == LANDSCAPE
        (tmp_path / "video.mp4").unlink()
        failing = example("curl").replace("over a lake", "over a lake #fail")
        curl = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", failing],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert curl.returncode == 0, curl.stderr  # the loop ends on "failed"
        assert "failed" in curl.stdout and "moderation_blocked" in curl.stdout
        assert not (tmp_path / "video.mp4").exists()  # no error JSON saved as a video
        env["RELAY_KEY"] = (tmp_path / "data" / "admin.key").read_text().strip()
        sdk = subprocess.run(
            [sys.executable, "-c", example("sdk")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert sdk.returncode == 0, sdk.stderr
        assert sdk.stdout.strip().endswith("completed")
        assert "Sora API" not in sdk.stderr  # the warning is explained and silenced
        assert (tmp_path / "video.mp4").read_bytes() == VIDEO
    finally:
        server.terminate()
        server.wait(timeout=15)
        log.close()
