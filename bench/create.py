"""Benchmark 4: the latency a create gains by going through the relay.

One client creates videos one after another on a keep-alive connection, alternating between the
relay (`POST /v1/videos`, JSON) and the fake OpenAI upstream itself (`POST /v1/videos` with the
multipart body the relay sends upstream), so both see the same machine load. The fake answers at
once; the difference is what the relay adds: auth, validation, the task row and its update
(SQLite, synchronous=FULL), and the upstream call. Rate limiting is off; polling is slow enough
that no poll runs during the measurement.

    .venv/bin/python bench/create.py [--quick]
"""

from __future__ import annotations

import time

import orjson
from _common import (
    Client,
    Section,
    cli,
    fmt_ms,
    free_port,
    helper,
    percentile,
    relay,
    workdir,
)
from spy import profiled

OVERHEAD_TARGET_S = 0.002
BOUNDARY = "benchboundary0123456789"
FIELDS = {
    "model": "sora-2",
    "prompt": "a paper boat on a rainy street",
    "seconds": "4",
    "size": "720x1280",
}


def multipart(fields: dict[str, str]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in fields.items()
    ]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


def measure(via: Client, direct: Client, warmup: int, count: int) -> tuple[list[float], ...]:
    """Alternate creates through the relay and straight upstream; the latencies after warm-up."""
    json_body = orjson.dumps(FIELDS)
    form_body = multipart(FIELDS)
    form_type = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    relay_s: list[float] = []
    direct_s: list[float] = []
    for i in range(warmup + count):
        t0 = time.perf_counter()
        status, body = via.call(
            "POST", "/v1/videos", json_body, {"Content-Type": "application/json"}
        )
        t1 = time.perf_counter()
        if status != 200:
            raise RuntimeError(f"relay create answered {status}: {body[:300]!r}")
        d_status, d_body = direct.call("POST", "/v1/videos", form_body, form_type)
        t2 = time.perf_counter()
        if d_status != 200:
            raise RuntimeError(f"upstream create answered {d_status}: {d_body[:300]!r}")
        if i >= warmup:
            relay_s.append(t1 - t0)
            direct_s.append(t2 - t1)
    return relay_s, direct_s


def run(quick: bool) -> Section:
    count = 100 if quick else 500
    warmup = 20
    section = Section(4, "create: relay vs straight to upstream")
    with workdir("create") as work:
        api_port = free_port()
        with (
            helper("fake_api.py", port=api_port, log=work / "fake_api.log"),
            relay(work, api_port=api_port, polling={"interval_s": 60, "max_interval_s": 60}) as r,
        ):
            via = r.client()
            direct = Client(api_port, {"Authorization": "Bearer sk-upstream"})
            with profiled(r.pid, "create"):
                relay_s, direct_s = measure(via, direct, warmup, count)
            via.close()
            direct.close()
    r50, r99 = percentile(relay_s, 50), percentile(relay_s, 99)
    d50, d99 = percentile(direct_s, 50), percentile(direct_s, 99)
    section.add("straight to upstream p50 / p99", f"{fmt_ms(d50)} / {fmt_ms(d99)}")
    section.add("through the relay p50 / p99", f"{fmt_ms(r50)} / {fmt_ms(r99)}")
    section.add(
        "added by the relay p50", fmt_ms(r50 - d50), "<= 2 ms", r50 - d50 <= OVERHEAD_TARGET_S
    )
    section.add("added by the relay p99", fmt_ms(r99 - d99))
    section.notes.append(f"{count} creates each way, alternating, after {warmup} warm-up pairs")
    return section


if __name__ == "__main__":
    cli(__doc__.splitlines()[0], run)
