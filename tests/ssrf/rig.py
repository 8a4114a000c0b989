"""The rig for the private-network guard's tests: a network that leads everywhere, a canary,
an upstream that redirects, a fake DNS, and a provider whose every URL the client chooses.

It stands in for the private network namespace issue 11 was probed in: every outbound connection
the relay makes is routed to 127.0.0.1 at the same port (`route_everything_to_loopback`), so any
address the guard lets through really is fetched, and the canary there sees it. DNS answers come
from `FakeDns`, put where the guard's system resolver would be (relay.upstream.system_resolver).
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from relay.domain import ContentSource, Remote, TaskRef, VideoRequest
from relay.providers.base import NoOptions, Provider, Submitted, Update
from tests.conftest import Relay
from tests.fakes.base import VIDEO
from tests.images import png
from tests.storetools import copies_of

# (what it is, the address, whether the guard lets it through)
FORMS: list[tuple[str, str, bool]] = [
    # IPv4
    ("this network", "0.0.0.0", False),
    ("this network, not zero", "0.1.2.3", False),
    ("loopback", "127.0.0.1", False),
    ("loopback, elsewhere in 127/8", "127.3.2.1", False),
    ("private 10/8", "10.1.2.3", False),
    ("private 172.16/12", "172.16.5.4", False),
    ("private 192.168/16", "192.168.1.1", False),
    ("carrier-grade NAT", "100.64.0.1", False),
    ("link-local, cloud metadata", "169.254.169.254", False),
    ("IETF protocol assignments", "192.0.0.8", False),
    ("documentation TEST-NET-1", "192.0.2.1", False),
    ("documentation TEST-NET-2", "198.51.100.7", False),
    ("documentation TEST-NET-3", "203.0.113.9", False),
    ("benchmarking", "198.18.0.1", False),
    ("6to4 relay anycast", "192.88.99.1", False),
    ("multicast", "224.0.0.251", False),
    ("multicast, SSDP", "239.255.255.250", False),
    ("reserved", "240.0.0.1", False),
    ("limited broadcast", "255.255.255.255", False),
    # IPv6 outside 2000::/3
    ("unspecified", "::", False),
    ("loopback", "::1", False),
    ("IPv4-mapped loopback", "::ffff:127.0.0.1", False),
    ("IPv4-mapped metadata", "::ffff:169.254.169.254", False),
    ("IPv4-mapped private", "::ffff:10.0.0.1", False),
    ("IPv4-mapped this network", "::ffff:0.0.0.0", False),
    ("IPv4-compatible metadata", "::169.254.169.254", False),
    ("IPv4-compatible public", "::8.8.8.8", False),
    ("NAT64 metadata", "64:ff9b::a9fe:a9fe", False),
    ("NAT64 loopback", "64:ff9b::7f00:1", False),
    ("NAT64 private", "64:ff9b::c0a8:101", False),
    ("local-use NAT64 metadata", "64:ff9b:1::a9fe:a9fe", False),
    ("local-use NAT64 public", "64:ff9b:1::808:808", False),
    ("discard-only", "100::1", False),
    ("unique local fc00::/7", "fc00::1", False),
    ("unique local fd00::/8", "fd12:3456::1", False),
    ("link-local", "fe80::1", False),
    ("site-local", "fec0::1", False),
    ("site-local, elsewhere", "feff::abcd", False),
    ("multicast, link", "ff02::1", False),
    ("multicast, global", "ff0e::1", False),
    ("SRv6 SIDs", "5f00::1", False),
    # IPv6 inside 2000::/3 that is not plainly global
    ("6to4 metadata", "2002:a9fe:a9fe::", False),
    ("6to4 loopback", "2002:7f00:1::1", False),
    ("6to4 public", "2002:808:808::1", False),
    ("Teredo", "2001:0:4136:e378:8000:63bf:3fff:fdd2", False),
    ("Teredo metadata", "2001::a9fe:a9fe", False),
    ("benchmarking", "2001:2::1", False),
    ("ORCHIDv2", "2001:20::1", False),
    ("documentation 2001:db8::/32", "2001:db8::1", False),
    ("documentation 3fff::/20", "3fff::1", False),
    # controls: plainly global, and the public IPv4 behind a translation
    ("public IPv4", "8.8.8.8", True),
    ("public IPv4, another", "93.184.215.14", True),
    ("public IPv6", "2606:4700:4700::1111", True),
    ("public IPv6, another", "2a00:1450:4001:80b::200e", True),
    ("IPv4-mapped public", "::ffff:8.8.8.8", True),
    ("NAT64 public (DNS64)", "64:ff9b::808:808", True),
]
REFUSED = [(label, address) for label, address, allowed in FORMS if not allowed]


@dataclass
class Network:
    """Every outbound connection of this test, by the address the relay asked for."""

    connects: list[str] = field(default_factory=list)

    def reached(self, address: str) -> bool:
        wanted = ipaddress.ip_address(address)
        return any(_same(seen, wanted) for seen in self.connects)


def _same(seen: str, wanted: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(seen.split("%", 1)[0]) == wanted
    except ValueError:
        return False


def route_everything_to_loopback(monkeypatch: pytest.MonkeyPatch) -> Network:
    """Connections to anything but 127.0.0.1 land on 127.0.0.1 at the same port, as if every
    address were a host on the relay's network running the canary."""
    loop = asyncio.get_running_loop()  # the test's loop: call from inside it
    real = loop.sock_connect
    net = Network()

    async def sock_connect(sock: socket.socket, address: Any) -> None:
        host, port = address[0], address[1]
        if host != "127.0.0.1":
            net.connects.append(host)
            if sock.family == socket.AF_INET6:
                address = ("::ffff:127.0.0.1", port, 0, 0)
            else:
                address = ("127.0.0.1", port)
        await real(sock, address)

    monkeypatch.setattr(loop, "sock_connect", sock_connect)
    return net


class FakeDns(AbstractResolver):
    """Host names the test chose, each resolving to the addresses it chose."""

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.names:
            raise OSError(socket.EAI_NONAME, "no such name")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.names[host]
        ]

    async def close(self) -> None:
        return None


class Canary:
    """Answers anything with media (a PNG for *.png, else the video) and remembers the path."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._any)
        self.server = TestServer(self.app, host="127.0.0.1")

    async def _any(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        if request.path.endswith(".png"):
            return web.Response(body=png(), content_type="image/png")
        return web.Response(body=VIDEO, content_type="video/mp4")

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port


class Bouncer:
    """An upstream that redirects to wherever `?to=` says."""

    def __init__(self) -> None:
        self.hits = 0
        self.app = web.Application()
        self.app.router.add_get("/bounce", self._bounce)
        self.server = TestServer(self.app, host="127.0.0.1")

    async def _bounce(self, request: web.Request) -> web.Response:
        self.hits += 1
        raise web.HTTPFound(request.query["to"])

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port


def url(host: str, port: int, path: str) -> str:
    return f"http://[{host}]:{port}{path}" if ":" in host else f"http://{host}:{port}{path}"


# --- a provider whose every URL is the client's to choose --------------------------------


class EchoProvider(Provider[NoOptions]):
    """Its result and thumbnail URL is the prompt; it fetches every input image as bytes (the
    way Veo, OpenAI and Jimeng do) through the adapter base's image_bytes."""

    name = "echo"
    credentials = ()
    default_base_url = "https://echo.invalid"  # never called
    features = frozenset({"image_input"})
    variants = frozenset({"video", "thumbnail"})
    typical_run_s = 1.0

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        for image in request.images:
            await self.image_bytes(image, 1024 * 1024)
        return Submitted(
            upstream_id="e_" + secrets.token_hex(4),
            seconds=str(request.duration),
            size=str(request.dimensions),
            state={"url": request.prompt},
        )

    async def poll(self, task: TaskRef) -> Update:
        return Update(status="completed")

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        kind = "image/webp" if variant == "thumbnail" else None
        return Remote(str(task.state["url"]), content_type=kind)


async def finished(relay: Relay, prompt: str) -> str:
    video = await relay.create(prompt=prompt)
    done = await relay.wait(video["id"])
    assert done["status"] == "completed", done
    return str(video["id"])


async def settled_copies(relay: Relay, video_id: str) -> list[str]:
    """The states of the task's copy jobs once the copier is done with them (none: dropped)."""
    for _ in range(500):
        copies = await copies_of(relay.store, video_id)
        if all(c.state == "stored" for c in copies):
            return [c.state for c in copies]
        await asyncio.sleep(0.02)
    raise AssertionError(f"copies of {video_id} still pending")
