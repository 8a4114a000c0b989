"""Shared pieces of the benchmarks: processes, /proc readings, the byte pattern, a raw HTTP client,
statistics and the result table.

Everything listens on 127.0.0.1. The relay always runs as the real `relay serve` in its own
process (the venv's python), with a config file and data dir in a temporary directory, so its
RSS and CPU are read from /proc exactly as an operator would see them.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
HOST = "127.0.0.1"
KEY = "sk-bench-0123456789abcdef"  # the relay's static key
UPSTREAM_KEY = "sk-upstream-bench-0123456789"
MIB = 1024 * 1024
GIB = 1024 * MIB
CLK_TCK = os.sysconf("SC_CLK_TCK")

# --- the byte pattern ---------------------------------------------------------------------------
# Downloads carry a repeating pseudo-random pattern whose period is a prime, so a dropped,
# repeated or reordered chunk never lines up with the pattern by accident. Any byte at offset o
# is PATTERN[o % PERIOD]; TILED holds two periods so one slice serves any chunk <= PERIOD.

PERIOD = 1_048_573  # the largest prime below 2**20
PATTERN = random.Random(20240505).randbytes(PERIOD)
TILED = PATTERN + PATTERN


def pattern_slice(offset: int, length: int) -> bytes:
    """`length` (<= PERIOD) bytes of the pattern starting at absolute `offset`."""
    start = offset % PERIOD
    return TILED[start : start + length]


_libc = ctypes.CDLL(None)
_libc.memcmp.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
_libc.memcmp.restype = ctypes.c_int
_TILED_BUF = ctypes.create_string_buffer(TILED, len(TILED))
_TILED_AT = ctypes.addressof(_TILED_BUF)


def address(data: bytes | bytearray) -> int:
    """Where a bytes or bytearray object's contents are, for memcmp (no copy, no allocation:
    a copy of every chunk would page-fault fresh memory and cap the client at ~500 MiB/s)."""
    if isinstance(data, bytearray):
        return ctypes.addressof((ctypes.c_char * len(data)).from_buffer(data))
    return int(ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0)


class Verifier:
    """Checks a body against the pattern as it arrives, from a starting offset."""

    def __init__(self, offset: int = 0) -> None:
        self.offset = offset
        self.ok = True

    def check(self, at: int, length: int) -> None:
        """Compare `length` bytes at memory address `at` with the pattern at the offset."""
        while length and self.ok:
            take = min(length, PERIOD)
            if _libc.memcmp(at, _TILED_AT + self.offset % PERIOD, take) != 0:
                self.ok = False
            self.offset += take
            at += take
            length -= take

    def feed(self, chunk: bytes) -> None:
        self.check(address(chunk), len(chunk))


def write_pattern_file(path: Path, size: int) -> None:
    """A real file of `size` pattern bytes (for nginx's sendfile), written a period at a time."""
    with path.open("wb") as fh:
        left = size
        while left:
            take = min(left, PERIOD)
            fh.write(PATTERN[:take])
            left -= take


# --- /proc -----------------------------------------------------------------------------------


def _status_kib(pid: int, name: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {name} for pid {pid}")


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS") / 1024


def hwm_mib(pid: int) -> float:
    """The peak RSS since start, or since the last reset_peak()."""
    return _status_kib(pid, "VmHWM") / 1024


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where the kernel refuses."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _stat_cpu(path: str) -> float:
    with open(path) as fh:
        # the command name may hold spaces: the fields after it start past the last ')'
        rest = fh.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads."""
    return _stat_cpu(f"/proc/{pid}/stat")


def main_thread_cpu(pid: int) -> float:
    """User + system CPU time of the main thread alone (the event loop); the rest of
    cpu_seconds() is other threads (aiosqlite's, the resolver's)."""
    return _stat_cpu(f"/proc/{pid}/task/{pid}/stat")


@dataclass
class CpuUse:
    total: float = 0.0  # share of one core, all threads
    loop: float = 0.0  # share of one core, the main thread


@contextlib.contextmanager
def cpu_meter(pid: int) -> Iterator[CpuUse]:
    """The CPU a process used while the block ran, as shares of one core."""
    use = CpuUse()
    total0, loop0, t0 = cpu_seconds(pid), main_thread_cpu(pid), time.perf_counter()
    try:
        yield use
    finally:
        elapsed = time.perf_counter() - t0
        use.total = (cpu_seconds(pid) - total0) / elapsed
        use.loop = (main_thread_cpu(pid) - loop0) / elapsed


class RssSampler:
    """Samples a process's RSS on a thread and keeps the maximum, with VmHWM as a backstop for
    peaks between samples."""

    def __init__(self, pid: int, every_s: float = 0.01) -> None:
        self.pid = pid
        self.every_s = every_s
        self.base = rss_mib(pid)
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._hwm_reset = False

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            with contextlib.suppress(OSError, RuntimeError):
                self.peak = max(self.peak, rss_mib(self.pid))

    def __enter__(self) -> RssSampler:
        self._hwm_reset = reset_peak(self.pid)
        self.base = rss_mib(self.pid)
        self.peak = self.base
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._hwm_reset:
            with contextlib.suppress(OSError, RuntimeError):
                self.peak = max(self.peak, hwm_mib(self.pid))

    @property
    def growth(self) -> float:
        return self.peak - self.base


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({model}), load average {load}, Python {sys.version.split()[0]}"


# --- processes ---------------------------------------------------------------------------------


def tool(name: str, *fallbacks: str) -> str | None:
    """An installed program: $BENCH_<NAME> if set ("none" hides it, to try the fallback path),
    else PATH, else the first of `fallbacks` that exists."""
    override = os.environ.get(f"BENCH_{name.upper().replace('-', '_')}")
    if override is not None:
        return None if override.lower() in ("", "none") else override
    return shutil.which(name) or next((p for p in fallbacks if Path(p).exists()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(
    port: int, timeout_s: float = 15.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.01)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout_s} s")


def stop(proc: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"relay-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def helper(script: str, *args: str, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run one of bench/'s helper servers (fake_api.py, byteserver.py) until the block ends."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [PYTHON, str(BENCH / script), "--port", str(port), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_port(port, proc=proc)
        yield proc
    finally:
        stop(proc, 5)


@dataclass
class RelayProc:
    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log: Path
    started_s: float  # from spawning to the first answered /healthz

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(self) -> Client:
        return Client(self.port, {"Authorization": f"Bearer {KEY}"})


def relay_config(
    *,
    port: int,
    data_dir: Path,
    api_port: int | None,
    polling: dict[str, float] | None = None,
    store: str | None = None,
) -> str:
    """A relay config: one static admin key, one `openai` channel on the fake API, no stored
    copies (the download benchmarks measure the proxy path), no rate limit; `store` is a
    `[store] url` (default: SQLite in the data dir)."""
    poll = {"interval_s": 5, "max_interval_s": 60, "concurrency": 16, **(polling or {})}
    lines = [
        "[server]",
        f'host = "{HOST}"',
        f"port = {port}",
        f'data_dir = "{data_dir}"',
        "allow_private_networks = true",
        "",
        *(["[store]", f'url = "{store}"', ""] if store else []),
        "[storage]",
        "keep_videos = false",
        "",
        "[polling]",
        *(f"{k} = {v}" for k, v in poll.items()),
        "",
        "[limits]",
        "requests_per_minute = 0",
        "",
        "[[keys]]",
        'name = "bench"',
        f'key = "{KEY}"',
        'user = "bench"',
        'role = "admin"',
        "",
    ]
    if api_port is not None:
        lines += [
            "[[channels]]",
            'name = "fake-openai"',
            'provider = "openai"',
            f'base_url = "http://{HOST}:{api_port}/v1"',
            f'api_key = "{UPSTREAM_KEY}"',
            'models = ["sora-2"]',
        ]
    else:
        lines += ["[[channels]]", 'name = "demo"', 'provider = "demo"', 'models = ["sora-2"]']
    return "\n".join(lines) + "\n"


def wait_healthz(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """Poll /healthz every 2 ms until it answers 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"relay exited with {proc.returncode} during start")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.002)
    raise RuntimeError("the relay did not answer /healthz in time")


def _relay_entry() -> list[str]:
    """`-m relay`, or a wrapper script from $BENCH_RELAY_WRAPPER (bench/wallprofile.py)."""
    wrapper = os.environ.get("BENCH_RELAY_WRAPPER")
    return [str(Path(wrapper).resolve())] if wrapper else ["-m", "relay"]


@contextlib.contextmanager
def relay(
    work: Path,
    *,
    api_port: int | None,
    polling: dict[str, float] | None = None,
    data_dir: Path | None = None,
    env: dict[str, str] | None = None,
    store: str | None = None,
) -> Iterator[RelayProc]:
    """`relay serve` in a subprocess, started and ready (its /healthz answered)."""
    port = free_port()
    data_dir = data_dir or work / "data"
    config = work / f"relay-{port}.toml"
    config.write_text(
        relay_config(port=port, data_dir=data_dir, api_port=api_port, polling=polling, store=store)
    )
    log = work / f"relay-{port}.log"
    with log.open("ab") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [PYTHON, *_relay_entry(), "serve", "--config", str(config)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    try:
        try:
            wait_healthz(port, proc)
        except RuntimeError:
            sys.stderr.write(log.read_text()[-3000:])
            raise
        yield RelayProc(proc, port, data_dir, log, time.perf_counter() - t0)
    finally:
        stop(proc)


# --- a small HTTP client for JSON calls ---------------------------------------------------------


class Client:
    """Blocking JSON calls over one keep-alive connection."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.port = port
        self.headers = headers or {}
        self.conn = http.client.HTTPConnection(HOST, port, timeout=60)

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        for attempt in range(2):
            try:
                self.conn.request(
                    method, path, body=body, headers={**self.headers, **(headers or {})}
                )
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, value: Any = None) -> tuple[int, Any]:
        body = orjson.dumps(value) if value is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        status, raw = self.call(method, path, body, headers)
        return status, orjson.loads(raw) if raw else None

    def close(self) -> None:
        self.conn.close()


def create_video(client: Client, prompt: str) -> str:
    status, body = client.json(
        "POST",
        "/v1/videos",
        {"model": "sora-2", "prompt": prompt, "seconds": "4", "size": "720x1280"},
    )
    if status != 200:
        raise RuntimeError(f"create answered {status}: {body}")
    return str(body["id"])


def wait_status(
    client: Client, video_id: str, want: str, timeout_s: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, body = client.json("GET", f"/v1/videos/{video_id}")
        if status == 200 and body["status"] == want:
            return dict(body)
        if status == 200 and body["status"] == "failed":
            raise RuntimeError(f"{video_id} failed: {body.get('error')}")
        time.sleep(0.05)
    raise RuntimeError(f"{video_id} did not become {want} in {timeout_s} s")


# --- a raw streaming download -------------------------------------------------------------------


@dataclass
class Download:
    status: int = 0
    length: int | None = None
    received: int = 0
    ttfb_s: float = 0.0  # request sent -> first response byte
    total_s: float = 0.0  # request sent -> last body byte
    verified: bool = False
    error: str = ""

    @property
    def complete(self) -> bool:
        return self.status in (200, 206) and self.length == self.received and self.verified

    @property
    def mib_s(self) -> float:
        return self.received / MIB / self.total_s if self.total_s else 0.0


def download(
    port: int,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    verify: bool = True,
    offset: int = 0,
    bufsize: int = MIB,
) -> Download:
    """GET a body over a fresh connection, timing the first byte and checking every byte against
    the pattern (from `offset`, for a Range). Blocking: run it on a thread for parallel loads."""
    result = Download()
    head = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    request = ("\r\n".join(head) + "\r\n\r\n").encode()
    buf = bytearray(bufsize)
    at = address(buf)
    verifier = Verifier(offset)
    try:
        with socket.create_connection((HOST, port), timeout=60) as sock:
            t0 = time.perf_counter()
            sock.sendall(request)
            raw = b""
            while b"\r\n\r\n" not in raw:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed before the headers")
                if not raw:
                    result.ttfb_s = time.perf_counter() - t0
                raw += chunk
            header, rest = raw.split(b"\r\n\r\n", 1)
            lines = header.decode("latin-1").split("\r\n")
            result.status = int(lines[0].split()[1])
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    result.length = int(value.strip())
            if verify:
                verifier.feed(rest)
            result.received = len(rest)
            while result.length is None or result.received < result.length:
                n = sock.recv_into(buf)
                if not n:
                    break
                if verify:
                    verifier.check(at, n)
                result.received += n
            result.total_s = time.perf_counter() - t0
    except OSError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    result.verified = verify and verifier.ok
    return result


# --- statistics and the table -------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


@dataclass
class Row:
    bench: str
    measure: str
    value: str
    target: str = ""
    verdict: str = ""  # "met", "MISSED", or "" when the row has no target


@dataclass
class Section:
    number: int
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self,
        measure: str,
        value: str,
        target: str = "",
        ok: bool | None = None,
    ) -> None:
        verdict = "" if ok is None else ("met" if ok else "MISSED")
        self.rows.append(Row(f"{self.number}. {self.title}", measure, value, target, verdict))


def render(sections: Sequence[Section]) -> str:
    rows = [Row("benchmark", "measure", "value", "target", "verdict")]
    for section in sections:
        rows += section.rows
    widths = [
        max(len(getattr(r, f)) for r in rows) for f in ("bench", "measure", "value", "target")
    ]
    out = []
    last = ""
    for i, r in enumerate(rows):
        bench = r.bench if r.bench != last else ""
        last = r.bench
        cells = [bench, r.measure, r.value, r.target]
        out.append(
            "  ".join(
                c.ljust(w) if j != 2 else c.rjust(w)
                for j, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + ("  " + r.verdict if r.verdict or i == 0 else "")
        )
        if i == 0:
            out.append("-" * (sum(widths) + 2 * len(widths) + 7))
    notes = [f"  {s.number}. {n}" for s in sections for n in s.notes]
    if notes:
        out += ["", "notes:", *notes]
    return "\n".join(line.rstrip() for line in out)


def cli(title: str, run: Callable[[bool], Section | list[Section]]) -> None:
    """The entry point of one benchmark script: `--quick` for smaller sizes."""
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and shorter windows")
    parser.add_argument("--profile", metavar="DIR", help="record the relay with py-spy into DIR")
    args = parser.parse_args()
    if args.profile:
        os.environ["BENCH_PROFILE_DIR"] = str(Path(args.profile).resolve())
    print(f"machine: {machine()}", flush=True)
    result = run(args.quick)
    sections = result if isinstance(result, list) else [result]
    print(render(sections))


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def fmt_mib(mib: float) -> str:
    return f"{mib:.1f} MiB"
