"""Benchmark 1: one large download through the relay, straight from the origin, and through nginx.

The relay serves `GET /v1/videos/{id}/content` for a completed task of its `openai` channel; the
fake API's /content answers 302 to an origin, which the relay follows and streams (stored copies
are off, so this is the proxy path). Two origins:

- bench/byteserver.py, generated pattern bytes (a separate process; never the bottleneck);
- nginx sending a real pattern file with sendfile, when nginx is installed. The same nginx also
  proxies that file with `proxy_buffering off`: the peer the relay is compared with.

Each path is downloaded `repeats` times over a fresh connection by a blocking client that checks
every byte; the table shows the median throughput and time to first byte, and for the relay the
largest RSS growth during a download (VmHWM after a reset, and 10 ms samples of VmRSS).

    .venv/bin/python bench/download.py [--quick]
"""

from __future__ import annotations

from contextlib import nullcontext

from _common import (
    GIB,
    HOST,
    KEY,
    MIB,
    Download,
    RssSampler,
    Section,
    cli,
    create_video,
    download,
    fmt_mib,
    fmt_ms,
    free_port,
    helper,
    median,
    relay,
    wait_status,
    workdir,
    write_pattern_file,
)
from _nginx import nginx
from spy import profiled

TTFB_TARGET_S = 0.010
RSS_TARGET_MIB = 16.0
RATIO_TARGET = 0.8


def _measure(
    port: int,
    path: str,
    repeats: int,
    *,
    auth: bool = False,
    pid: int | None = None,
    profile: str = "",
) -> tuple[list[Download], float]:
    """`repeats` downloads of one path; the largest RSS growth of `pid` during one of them."""
    headers = {"Authorization": f"Bearer {KEY}"} if auth else {}
    results, growth = [], 0.0
    for i in range(repeats):
        if pid is not None:
            with RssSampler(pid) as rss, profiled(pid, profile) if i == 0 else nullcontext():
                result = download(port, path, headers=headers)
            growth = max(growth, rss.growth)
        else:
            result = download(port, path, headers=headers)
        if not result.complete:
            raise RuntimeError(f"download of {path} on :{port} failed: {result}")
        results.append(result)
    return results, growth


def _rate(results: list[Download]) -> float:
    return median([r.mib_s for r in results])


def _ttfb(results: list[Download]) -> float:
    return median([r.ttfb_s for r in results])


def run(quick: bool) -> Section:
    size = 256 * MIB if quick else GIB
    repeats = 1 if quick else 3
    label = f"{size // MIB} MiB" if size < GIB else f"{size // GIB} GiB"
    section = Section(1, f"one {label} download")
    with workdir("download") as work:
        byte_port, api_port = free_port(), free_port()
        with (
            helper("byteserver.py", port=byte_port, log=work / "byteserver.log"),
            helper("fake_api.py", port=api_port, log=work / "fake_api.log"),
            nginx(work / "nginx") as peer,
            relay(work, api_port=api_port, polling={"interval_s": 0.05}) as r,
        ):
            client = r.client()
            targets = {"bytes": f"http://{HOST}:{byte_port}/blob/{size}"}
            if peer is not None:
                write_pattern_file(peer.files / "blob.mp4", size)
                targets["nginx"] = f"http://{HOST}:{peer.origin}/blob.mp4"
            videos = {
                name: create_video(client, f"bench content={url}") for name, url in targets.items()
            }
            for video_id in videos.values():
                wait_status(client, video_id, "completed")
                # warm the relay's connection pools and code paths with a small range
                warm = download(
                    r.port,
                    f"/v1/videos/{video_id}/content",
                    headers={"Authorization": f"Bearer {KEY}", "Range": f"bytes=0-{MIB - 1}"},
                )
                if warm.status != 206 or not warm.complete:
                    raise RuntimeError(f"warm-up range through the relay failed: {warm}")
            client.close()

            direct, _ = _measure(byte_port, f"/blob/{size}", repeats)
            via_relay, growth = _measure(
                r.port,
                f"/v1/videos/{videos['bytes']}/content",
                repeats,
                auth=True,
                pid=r.pid,
                profile="download-bytes",
            )
            section.add("byte server, direct: throughput", f"{_rate(direct):.0f} MiB/s")
            section.add("byte server, direct: first byte", fmt_ms(_ttfb(direct)))
            section.add("relay <- byte server: throughput", f"{_rate(via_relay):.0f} MiB/s")
            section.add("relay <- byte server: first byte", fmt_ms(_ttfb(via_relay)))
            section.add(
                "relay <- byte server / direct",
                f"{_rate(via_relay) / _rate(direct):.2f}x",
            )
            if peer is None:
                section.add("nginx proxy_buffering off", "skipped (not installed)")
                section.add(
                    "relay: first byte",
                    fmt_ms(_ttfb(via_relay)),
                    "< 10 ms",
                    _ttfb(via_relay) < TTFB_TARGET_S,
                )
            else:
                origin, _ = _measure(peer.origin, "/blob.mp4", repeats)
                proxied, _ = _measure(peer.proxy, "/blob.mp4", repeats)
                tuned, _ = _measure(peer.tuned, "/blob.mp4", repeats)
                buffered, _ = _measure(peer.peer, "/blob.mp4", repeats)
                relayed, growth_ng = _measure(
                    r.port,
                    f"/v1/videos/{videos['nginx']}/content",
                    repeats,
                    auth=True,
                    pid=r.pid,
                    profile="download-nginx",
                )
                growth = max(growth, growth_ng)
                ratio = _rate(relayed) / _rate(proxied)
                section.add(
                    "nginx origin (sendfile), direct: throughput", f"{_rate(origin):.0f} MiB/s"
                )
                section.add(
                    "nginx proxy (buffering off): throughput", f"{_rate(proxied):.0f} MiB/s"
                )
                section.add("nginx proxy (buffering off): first byte", fmt_ms(_ttfb(proxied)))
                section.add(
                    "nginx proxy (buffering off, 256k buffers): throughput",
                    f"{_rate(tuned):.0f} MiB/s",
                )
                section.add(
                    "nginx proxy (buffering on, 128k buffers): throughput",
                    f"{_rate(buffered):.0f} MiB/s",
                )
                section.add("relay <- nginx origin: throughput", f"{_rate(relayed):.0f} MiB/s")
                section.add(
                    "relay / nginx proxy throughput",
                    f"{ratio:.2f}x",
                    ">= 0.8x",
                    ratio >= RATIO_TARGET,
                )
                section.add(
                    "relay / nginx proxy with 256k buffers", f"{_rate(relayed) / _rate(tuned):.2f}x"
                )
                section.add(
                    "relay / nginx proxy, buffering on, 128k buffers (status reads' peer)",
                    f"{_rate(relayed) / _rate(buffered):.2f}x",
                )
                ttfb = max(_ttfb(via_relay), _ttfb(relayed))
                section.add(
                    "relay: first byte (worst path)", fmt_ms(ttfb), "< 10 ms", ttfb < TTFB_TARGET_S
                )
                section.notes.append(
                    f"peer: {peer.version}, worker_processes auto, proxy_buffering off and"
                    " otherwise defaults (proxy_buffer_size = one page); the 256k row is for"
                    " reference (proxy_buffer_size 256k); the 128k row is issue 10's tuned proxy"
                    " (proxy_buffering on, 4 x 128k buffers, keep-alive upstream, access log on)"
                )
            section.add(
                "relay: RSS growth during a download",
                fmt_mib(growth),
                "<= 16 MiB",
                growth <= RSS_TARGET_MIB,
            )
            section.notes.append(
                f"{repeats} download(s) of {label} per path, every byte verified; medians shown"
            )
    return section


if __name__ == "__main__":
    cli(__doc__.splitlines()[0], run)
