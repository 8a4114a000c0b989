"""Benchmark 3: status reads, `GET /v1/videos/{id}` at 32 connections.

One running task (the fake upstream keeps it `in_progress`), read over and over on 32 keep-alive
connections for a fixed time by `wrk` when it is installed (2 threads, latency distribution),
else by a bounded asyncio load generator in this process. Shows requests/s, p50/p99 latency and
the count of non-200 answers. The relay logs at its default level (INFO, one access-log line per
request), as an operator would run it.

    .venv/bin/python bench/status.py [--quick]
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time

from _common import (
    HOST,
    KEY,
    Section,
    cli,
    cpu_meter,
    create_video,
    fmt_ms,
    free_port,
    helper,
    percentile,
    relay,
    tool,
    workdir,
)
from spy import profiled

CONNECTIONS = 32
RPS_TARGET = 3000.0
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def with_wrk(wrk: str, url: str, duration_s: int) -> dict[str, float]:
    out = subprocess.run(
        [
            wrk,
            "-t2",
            f"-c{CONNECTIONS}",
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


def run(quick: bool) -> Section:
    duration = 3 if quick else 10
    section = Section(3, f"status reads at {CONNECTIONS} connections")
    wrk = tool("wrk")
    with workdir("status") as work:
        api_port = free_port()
        with (
            helper("fake_api.py", port=api_port, log=work / "fake_api.log"),
            relay(work, api_port=api_port) as r,
        ):
            client = r.client()
            video_id = create_video(client, "bench status=in_progress")
            client.close()
            path = f"/v1/videos/{video_id}"
            if wrk:
                with_wrk(wrk, f"http://{HOST}:{r.port}{path}", 1)  # warm-up
                with profiled(r.pid, "status"), cpu_meter(r.pid) as cpu:
                    result = with_wrk(wrk, f"http://{HOST}:{r.port}{path}", duration)
                load = "wrk -t2 -c32"
            else:
                with_asyncio(r.port, path, 1)
                with profiled(r.pid, "status"), cpu_meter(r.pid) as cpu:
                    result = with_asyncio(r.port, path, duration)
                load = "asyncio load generator (wrk: skipped (not installed))"
            section.add(
                "requests/s", f"{result['rps']:.0f}", ">= 3000", result["rps"] >= RPS_TARGET
            )
            section.add("latency p50", fmt_ms(result["p50"]))
            section.add("latency p99", fmt_ms(result["p99"]))
            section.add(
                "non-200 answers or socket errors",
                f"{result['bad']:.0f} of {result['requests']:.0f}",
                "0",
                result["bad"] == 0,
            )
            section.add(
                "relay CPU, share of a core (event loop / others)",
                f"{cpu.total:.0%} ({cpu.loop:.0%} / {cpu.total - cpu.loop:.0%})",
            )
            section.notes.append(f"load: {load}, {duration} s after a 1 s warm-up")
    return section


if __name__ == "__main__":
    cli(__doc__.splitlines()[0], run)
