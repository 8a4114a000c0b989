"""`relay serve` for the browser tests, with one provider more: `longdemo`, the demo whose clip
has 4 MiB of nothing inside its media data, before its last half second. It plays exactly like
the demo's landscape clip (the same frames), but a player that seeks to its end must fetch from
far into the file, as on a long video: that is how a test sees a seek become a Range request
(the demo's own clips are so small that Chromium holds them whole after loading).

    python -m tests.browser.longclip serve --config ...   (any `relay` command line)
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from typing import ClassVar

from relay.domain import ContentSource, LocalFile, TaskRef
from relay.providers.demo import ASSETS, DemoProvider

GAP = 4 * 1024 * 1024
SPLIT_AT = 84  # of the clip's 96 frames (24 per second): the gap comes at 3.5 s
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    found, i = [], 0
    while i < len(data):
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        found.append((kind, data[i + 8 : i + size]))
        i += size
    return found


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _find(data: bytes, path: list[bytes]) -> bytes:
    for kind, body in _boxes(data):
        if kind == path[0]:
            return body if len(path) == 1 else _find(body, path[1:])
    raise KeyError(path)


def longer_mp4(data: bytes, gap: int = GAP, split: int = SPLIT_AT) -> bytes:
    """A one-track MP4 whose samples sit in one chunk, with `gap` zero bytes inside its mdat
    after sample `split`: the one chunk becomes two (stsc, stco), the rest is unchanged."""
    stbl = _find(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl"])
    stsz = _find(stbl, [b"stsz"])
    count = struct.unpack(">I", stsz[8:12])[0]
    sizes = struct.unpack(f">{count}I", stsz[12 : 12 + 4 * count])
    stsc_old = _find(stbl, [b"stsc"])
    entries, _, per_chunk, described = struct.unpack(">IIII", stsc_old[4:20])
    assert entries == 1 and per_chunk == count, "one chunk holding every sample"
    (offset,) = struct.unpack(">I", _find(stbl, [b"stco"])[8:12])
    grow = 12 + 4  # one stsc entry and one stco offset more
    head = sum(sizes[:split])
    first = offset + grow
    stsc = struct.pack(">IIIIIIII", 0, 2, 1, split, described, 2, count - split, described)
    stco = struct.pack(">IIII", 0, 2, first, first + head + gap)

    def rebuild(body: bytes) -> bytes:
        out = b""
        for kind, inner in _boxes(body):
            if kind == b"stsc":
                inner = stsc
            elif kind == b"stco":
                inner = stco
            elif kind in _CONTAINERS:
                inner = rebuild(inner)
            out += _box(kind, inner)
        return out

    out = b""
    for kind, body in _boxes(data):
        if kind == b"moov":
            out += _box(kind, rebuild(body))
        elif kind == b"mdat":
            assert offset == len(out) - grow + 8, "the chunk starts the media data"
            out += _box(kind, body[:head] + bytes(gap) + body[head:])
        else:
            out += _box(kind, body)
    return out


class LongDemo(DemoProvider):
    name = "longdemo"
    clip: ClassVar[Path | None] = None

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        if variant == "video" and self.clip is not None:
            return LocalFile(self.clip, "video/mp4")
        return await super().content(task, variant)


def main() -> int:
    from relay.cli import main as relay
    from relay.providers import REGISTRY

    REGISTRY[LongDemo.name] = LongDemo
    if "serve" in sys.argv[1:2]:  # the clip goes beside the relay: its working directory
        LongDemo.clip = Path("long-clip.mp4").resolve()
        LongDemo.clip.write_bytes(longer_mp4((ASSETS / "video-landscape.mp4").read_bytes()))
    return relay(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
