"""What the browser tests share: a real `relay serve` in a subprocess (users made as the README
says, then through the admin API), a small HTTP client for setting things up, and a watch on
each page that fails a test on a console error, an uncaught exception, a CSP violation or an
HTTP error the test did not expect.

Chromium is the distribution's (`apt-get install chromium`), found on PATH or at
$RELAY_TEST_CHROMIUM; never `playwright install`. Without it the browser tests skip, saying
why; with RELAY_TEST_REQUIRE_BROWSER set (CI) that is an error instead.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips (or, in CI, fails), saying why
    expect = None

REQUIRE_ENV = "RELAY_TEST_REQUIRE_BROWSER"
CHROMIUM_ENV = "RELAY_TEST_CHROMIUM"
ROOT_PASSWORD = "root-password-for-tests"
FAST_S = 1.5  # the demo channel's run time: sora-2 and demo
STEADY_S = 6.0  # model "steady": in_progress long enough to be seen by a loaded machine
SLOW_S = 40.0  # model "slow": stays in_progress for a test's whole life
REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "relay" / "providers" / "assets"


def chromium() -> str | None:
    chosen = os.environ.get(CHROMIUM_ENV)
    if chosen:
        return chosen if os.access(chosen, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if chromium() is None:
        where = os.environ.get(CHROMIUM_ENV) or "chromium or chromium-browser on PATH"
        return f"Chromium is not installed (no {where}; apt-get install chromium)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CONFIG = """\
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data}"
public_url = "http://127.0.0.1:{port}"

[polling]
interval_s = 1
max_interval_s = 2

[limits]
requests_per_minute = 0

[[channels]]
name = "demo"
provider = "demo"
models = ["sora-2", "demo"]
max_in_flight = 500
options = {{ finish_after_s = {fast} }}

[[channels]]
name = "steady"
provider = "demo"
models = ["steady"]
options = {{ finish_after_s = {steady} }}

[[channels]]
name = "slow"
provider = "demo"
models = ["slow"]
options = {{ finish_after_s = {slow} }}

[[channels]]
name = "long"
provider = "longdemo"  # tests/browser/longclip.py
models = ["long"]
options = {{ finish_after_s = {fast} }}

[[channels]]
name = "broken"
provider = "openai"
models = ["broken"]
api_key = "sk-upstream-secret-never-shown"
base_url = "http://127.0.0.1:{dead}/v1"
"""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class User:
    name: str
    password: str
    token: str


@dataclass
class Relay:
    url: str
    home: Path
    process: subprocess.Popen[bytes]
    root: User | None = None
    _names: Any = field(default_factory=lambda: itertools.count(1))

    def api(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        key: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        if token is not None:
            sent["token"] = token
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                status, raw, got = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            status, raw, got = exc.code, exc.read(), dict(exc.headers)
        is_json = "json" in got.get("Content-Type", "")
        return Answer(status, got, json.loads(raw) if is_json and raw else raw)

    def login(self, name: str, password: str) -> str:
        answer = self.api("POST", "/api/login", body={"username": name, "password": password})
        assert answer.status == 200, answer.body
        return str(answer.body["token"])

    def user(self, prefix: str = "user", *, role: str = "user") -> User:
        """A new user with a password, made by the admin through /api/users."""
        assert self.root is not None
        name = f"{prefix}{next(self._names)}"
        password = f"{name}-password"
        made = self.api(
            "POST",
            "/api/users",
            token=self.root.token,
            body={"name": name, "password": password, "role": role},
        )
        assert made.status == 200, made.body
        return User(name, password, self.login(name, password))

    def key(self, user: User) -> str:
        made = self.api("POST", "/api/keys", token=user.token, body={"name": "tests"})
        assert made.status == 200, made.body
        return str(made.body["key"])

    def create(self, user: User, prompt: str, **fields: Any) -> dict[str, Any]:
        made = self.api("POST", "/api/videos", token=user.token, body={"prompt": prompt, **fields})
        assert made.status == 200, made.body
        return made.body  # type: ignore[no-any-return]

    def wait(self, user: User, video_id: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.api("GET", f"/api/videos/{video_id}", token=user.token).body
            if got["status"] in ("completed", "failed"):
                return got  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, f"{video_id} still {got['status']}"
            time.sleep(0.1)

    def finished(self, user: User, prompts: list[str], **fields: Any) -> list[dict[str, Any]]:
        made = [self.create(user, prompt, **fields) for prompt in prompts]
        return [self.wait(user, video["id"]) for video in made]


def relay_command(*args: str) -> list[str]:
    """`relay ARGS`, knowing the provider `longdemo` too (tests/browser/longclip.py)."""
    return [sys.executable, "-m", "tests.browser.longclip", *args]


def start_relay(home: Path) -> Relay:
    port = free_port()
    config = home / "config.toml"
    config.write_text(
        CONFIG.format(
            port=port,
            data=home / "data",
            fast=FAST_S,
            steady=STEADY_S,
            slow=SLOW_S,
            dead=free_port(),
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    # the relay of this checkout, whatever is installed
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    # the first password, as the README says: `relay users add NAME` reads it from stdin
    added = subprocess.run(
        relay_command("users", "add", "root", "--admin", "--config", str(config)),
        input=ROOT_PASSWORD + "\n",
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    log = (home / "serve.log").open("wb")
    process = subprocess.Popen(
        relay_command("serve", "--config", str(config)),
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    relay = Relay(f"http://127.0.0.1:{port}", home, process)
    deadline = time.monotonic() + 60
    while True:
        try:
            if relay.api("GET", "/healthz").status == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("relay serve did not start:\n" + (home / "serve.log").read_text())
        time.sleep(0.1)
    relay.root = User("root", ROOT_PASSWORD, relay.login("root", ROOT_PASSWORD))
    return relay


def stop_relay(relay: Relay) -> None:
    relay.process.terminate()
    try:
        relay.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        relay.process.kill()
        relay.process.wait()


def sign_in(page: Any, user: User) -> None:
    """Sign the page's context in through the API (the form has its own tests): the context's
    request client shares the browser's cookies."""
    answer = page.context.request.post(
        "/api/login", data={"username": user.name, "password": user.password}
    )
    assert answer.status == 200, answer.text()


# --- watching a page --------------------------------------------------------------------------

# Reports every CSP violation to the test (an init script runs outside the page's CSP).
REPORT_CSP = """
window.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__relayCsp?.(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
}, true);
"""

_LOAD_FAILED = re.compile(r"^Failed to load resource: the server responded with a status of (\d+)")


@dataclass
class Watch:
    """What went wrong on a page, by kind; `allow` names HTTP errors a test expects."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)
    http: list[tuple[int, str, str]] = field(default_factory=list)
    allowed: list[tuple[int, str]] = field(default_factory=list)
    requests: list[tuple[float, str, str]] = field(default_factory=list)  # (time, method, url)

    def allow(self, status: int, path: str) -> None:
        """An HTTP error the test provokes on purpose: `status` from a URL containing `path`."""
        self.allowed.append((status, path))

    def attach(self, context: Any) -> None:
        context.expose_binding("__relayCsp", lambda _source, text: self.csp.append(text))
        context.add_init_script(REPORT_CSP)
        context.on("console", self._on_console)
        context.on("weberror", lambda error: self.errors.append(str(error.error)))
        context.on("request", lambda r: self.requests.append((time.monotonic(), r.method, r.url)))
        context.on("response", self._on_response)

    def _on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        if _LOAD_FAILED.match(message.text):
            return  # an HTTP error: judged from the response itself, below
        self.console.append(message.text)

    def _on_response(self, response: Any) -> None:
        if response.status >= 400:
            self.http.append((response.status, response.request.method, response.url))

    def problems(self) -> list[str]:
        found = [f"console error: {m}" for m in self.console]
        found += [f"page error: {e}" for e in self.errors]
        found += [f"CSP violation: {c}" for c in self.csp]
        for status, method, url in self.http:
            if not any(status == s and path in url for s, path in self.allowed):
                found.append(f"unexpected HTTP {status}: {method} {url}")
        return found
