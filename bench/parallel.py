"""Benchmark 2: 64 parallel downloads of 256 MiB through the relay, every byte verified.

64 completed tasks of the relay's `openai` channel each redirect to a 256 MiB body of the byte
server (bench/byteserver.py); 64 client threads download one each at the same time over their own
connections. The table shows the relay's total RSS at its peak (VmHWM after a reset, and 10 ms
samples), the aggregate throughput, and the spread of time to first byte (a download that waits
for an upstream connection shows up there).

    .venv/bin/python bench/parallel.py [--quick]
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from _common import (
    HOST,
    KEY,
    MIB,
    RssSampler,
    Section,
    cli,
    create_video,
    download,
    fmt_mib,
    free_port,
    helper,
    percentile,
    relay,
    wait_status,
    workdir,
)
from spy import profiled

RSS_TARGET_MIB = 150.0


def run(quick: bool) -> Section:
    count = 64
    size = 32 * MIB if quick else 256 * MIB
    section = Section(2, f"{count} x {size // MIB} MiB in parallel")
    with workdir("parallel") as work:
        byte_port, api_port = free_port(), free_port()
        with (
            helper("byteserver.py", port=byte_port, log=work / "byteserver.log"),
            helper("fake_api.py", port=api_port, log=work / "fake_api.log"),
            relay(work, api_port=api_port, polling={"interval_s": 0.05}) as r,
        ):
            client = r.client()
            url = f"http://{HOST}:{byte_port}/blob/{size}"
            videos = [create_video(client, f"bench content={url}") for _ in range(count)]
            for video_id in videos:
                wait_status(client, video_id, "completed")
            client.close()
            warm = download(
                r.port,
                f"/v1/videos/{videos[0]}/content",
                headers={"Authorization": f"Bearer {KEY}", "Range": f"bytes=0-{MIB - 1}"},
            )
            if not warm.complete:
                raise RuntimeError(f"warm-up range through the relay failed: {warm}")
            headers = {"Authorization": f"Bearer {KEY}"}
            with (
                RssSampler(r.pid) as rss,
                profiled(r.pid, "parallel"),
                ThreadPoolExecutor(count) as pool,
            ):
                t0 = time.perf_counter()
                results = list(
                    pool.map(
                        lambda v: download(r.port, f"/v1/videos/{v}/content", headers=headers),
                        videos,
                    )
                )
                wall = time.perf_counter() - t0
            complete = sum(1 for res in results if res.complete)
            received = sum(res.received for res in results)
            ttfbs = [res.ttfb_s for res in results]
            section.add("relay RSS before", fmt_mib(rss.base))
            section.add(
                "relay RSS at peak (total)",
                fmt_mib(rss.peak),
                "< 150 MiB",
                rss.peak < RSS_TARGET_MIB,
            )
            section.add(
                "downloads complete, bytes verified",
                f"{complete}/{count}",
                f"{count}/{count}",
                complete == count,
            )
            section.add("aggregate throughput", f"{received / MIB / wall:.0f} MiB/s")
            section.add("wall time", f"{wall:.1f} s")
            section.add(
                "first byte p50 / p90 / max, ms",
                " / ".join(
                    f"{x * 1000:.0f}"
                    for x in (percentile(ttfbs, 50), percentile(ttfbs, 90), max(ttfbs))
                ),
            )
            failed = [res for res in results if not res.complete]
            if failed:
                section.notes.append(f"first failure: {failed[0]}")
    return section


if __name__ == "__main__":
    cli(__doc__.splitlines()[0], run)
