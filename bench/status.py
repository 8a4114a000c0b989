"""Benchmark 3: status reads, `GET /v1/videos/{id}` at 32 connections, beside nginx.

One running task (the fake upstream keeps it `in_progress`), read over and over on 32 keep-alive
connections for a fixed time by `wrk` when it is installed (2 threads, latency distribution),
else by a bounded asyncio load generator in this process. Shows requests/s, p50/p99 latency and
the count of non-200 answers. The relay logs at its default level (INFO, one access-log line per
request), as an operator would run it.

The peer, when nginx is installed: nginx proxying the same path, with the same load for the same
time, to an nginx origin that answers the relay's own body for it; `proxy_buffering on` with
128 KiB buffers, keep-alive to the origin, access log on (bench/_nginx.py, the `peer` server).
Beside both, the floor's ceiling: aiohttp's minimal handler answering the same bytes with no
authentication, database or access log (bench/floor.py), what one aiohttp process reaches here.

    .venv/bin/python bench/status.py [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import time
from pathlib import Path

from _common import (
    HOST,
    KEY,
    Client,
    Section,
    cli,
    cpu_meter,
    cpu_seconds,
    create_video,
    fmt_ms,
    free_port,
    helper,
    percentile,
    relay,
    tool,
    workdir,
)
from _nginx import nginx
from spy import profiled

CONNECTIONS = 32
RPS_TARGET = 3000.0
RATIO_TARGET = 0.5  # of the tuned nginx peer (issue 10)
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def with_wrk(
    wrk: str, url: str, duration_s: int, *, threads: int = 2, connections: int = CONNECTIONS
) -> dict[str, float]:
    out = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration_s}s",
            "--timeout",
            "5s",
            "--latency",
            "-H",
            f"Authorization: Bearer {KEY}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=duration_s + 30,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _seconds(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _seconds(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    result = {"rps": rps, "p50": p50, "p99": p99, "requests": total}
    result["bad"] = int(bad.group(1)) if bad else 0
    if errors:
        result["bad"] += sum(int(n) for n in re.findall(r"\d+", errors.group(0)))
    return result


async def _worker(
    port: int, path: str, until: float, latencies: list[float], bad: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {KEY}\r\n\r\n"
    ).encode()
    try:
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if not head.startswith(b"HTTP/1.1 200"):
                bad.append(1)
    finally:
        writer.close()


def with_asyncio(port: int, path: str, duration_s: int) -> dict[str, float]:
    latencies: list[float] = []
    bad: list[int] = []

    async def main() -> float:
        t0 = time.perf_counter()
        until = t0 + duration_s
        await asyncio.gather(
            *(_worker(port, path, until, latencies, bad) for _ in range(CONNECTIONS))
        )
        return time.perf_counter() - t0

    wall = asyncio.run(main())
    return {
        "rps": len(latencies) / wall,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "requests": len(latencies),
        "bad": len(bad),
    }


def _load(wrk: str | None, port: int, path: str, duration_s: int) -> dict[str, float]:
    """One measured window on `port`: wrk when installed, else the asyncio generator."""
    if wrk:
        return with_wrk(wrk, f"http://{HOST}:{port}{path}", duration_s)
    return with_asyncio(port, path, duration_s)


def _pids(pid: int) -> list[int]:
    """A process and its children (nginx's master and workers)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [pid, *(int(p) for p in fh.read().split())]
    except OSError:
        return [pid]


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


def _peer(
    work: Path, wrk: str | None, video_id: str, body: bytes, duration: int
) -> tuple[dict[str, float], float, str] | None:
    """nginx (the tuned peer: buffering on, 128k buffers, keep-alive upstream, access log on)
    proxying the same path to an origin that answers the relay's own body for it; its
    requests/s, latency and CPU (master and workers, share of one core)."""
    with nginx(work / "nginx") as peer:
        if peer is None:
            return None
        answer = peer.files / "v1" / "videos" / video_id
        answer.parent.mkdir(parents=True)
        answer.write_bytes(body)
        path = f"/v1/videos/{video_id}"
        check = Client(peer.peer)
        status, got = check.call("GET", path)
        check.close()
        if status != 200 or got != body:
            raise RuntimeError(f"nginx peer answered {status}: {got[:200]!r}")
        _load(wrk, peer.peer, path, 1)  # warm-up
        pids = _pids(peer.pid)
        cpu0, t0 = _cpu(pids), time.perf_counter()
        result = _load(wrk, peer.peer, path, duration)
        cpu = (_cpu(pids) - cpu0) / (time.perf_counter() - t0)
        logged = sum(1 for _ in (work / "nginx" / "access.log").open("rb"))
        if logged < result["requests"]:
            raise RuntimeError(f"nginx logged {logged} lines for {result['requests']} requests")
        return result, cpu, peer.version


def _floor(work: Path, wrk: str | None, video_id: str, body: bytes, duration: int) -> float:
    """Requests/s of aiohttp's minimal handler answering the same body (bench/floor.py)."""
    (work / "floor.json").write_bytes(body)
    port = free_port()
    args = ("--body", str(work / "floor.json"))
    with helper("floor.py", *args, port=port, log=work / "floor.log"):
        path = f"/v1/videos/{video_id}"
        _load(wrk, port, path, 1)  # warm-up
        return _load(wrk, port, path, duration)["rps"]


def run(quick: bool) -> Section:
    duration = 3 if quick else 10
    section = Section(3, f"status reads at {CONNECTIONS} connections")
    wrk = tool("wrk")
    load = "wrk -t2 -c32" if wrk else "asyncio load generator (wrk: skipped (not installed))"
    with workdir("status") as work:
        api_port = free_port()
        with (
            helper("fake_api.py", port=api_port, log=work / "fake_api.log"),
            relay(work, api_port=api_port) as r,
        ):
            client = r.client()
            video_id = create_video(client, "bench status=in_progress")
            path = f"/v1/videos/{video_id}"
            status, body = client.call("GET", path)
            client.close()
            if status != 200:
                raise RuntimeError(f"the relay answered {status} to {path}")
            # the peer first, then the relay, each for the same time under the same load
            peer = _peer(work, wrk, video_id, body, duration)
            floor = _floor(work, wrk, video_id, body, duration)
            _load(wrk, r.port, path, 1)  # warm-up
            with profiled(r.pid, "status"), cpu_meter(r.pid) as cpu:
                result = _load(wrk, r.port, path, duration)
            section.add(
                "relay: requests/s", f"{result['rps']:.0f}", ">= 3000", result["rps"] >= RPS_TARGET
            )
            section.add(
                "relay: latency p50 / p99", f"{fmt_ms(result['p50'])} / {fmt_ms(result['p99'])}"
            )
            section.add(
                "relay: non-200 answers or socket errors",
                f"{result['bad']:.0f} of {result['requests']:.0f}",
                "0",
                result["bad"] == 0,
            )
            section.add(
                "relay: CPU, share of a core (event loop / others)",
                f"{cpu.total:.0%} ({cpu.loop:.0%} / {cpu.total - cpu.loop:.0%})",
            )
            section.add("aiohttp's minimal handler: requests/s", f"{floor:.0f}")
            section.add("relay / aiohttp's minimal handler", f"{result['rps'] / floor:.2f}x")
            if peer is None:
                section.add("nginx peer", "skipped (not installed)")
            else:
                theirs, nginx_cpu, version = peer
                ratio = result["rps"] / theirs["rps"]
                section.add("nginx: requests/s", f"{theirs['rps']:.0f}")
                section.add(
                    "nginx: latency p50 / p99",
                    f"{fmt_ms(theirs['p50'])} / {fmt_ms(theirs['p99'])}",
                )
                section.add(
                    "nginx: non-200 answers or socket errors",
                    f"{theirs['bad']:.0f} of {theirs['requests']:.0f}",
                )
                section.add("nginx: CPU, share of a core (all workers)", f"{nginx_cpu:.0%}")
                section.add(
                    "relay / nginx requests/s",
                    f"{ratio:.2f}x",
                    f">= {RATIO_TARGET:.2f}x",
                    ratio >= RATIO_TARGET,
                )
                section.notes.append(
                    f"peer: {version}, worker_processes auto, proxying the same path to an nginx"
                    " origin that answers the relay's own body for it (a file); proxy_buffering"
                    " on, proxy_buffer_size 128k, proxy_buffers 4 128k, keep-alive to the"
                    " origin, access log on (a file, one line per request)"
                )
            section.notes.append(
                f"load: {load}, {duration} s after a 1 s warm-up, nginx first, then aiohttp's"
                " minimal handler (bench/floor.py: no auth, database or access log), then the relay"
            )
    return section


if __name__ == "__main__":
    cli(__doc__.splitlines()[0], run)
