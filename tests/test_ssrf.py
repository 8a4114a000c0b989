"""The private-network guard over every address form, through every door a URL gets in by.

The forms: IPv4 private and special ranges, and the IPv6 ways to write them (mapped, compatible,
6to4, NAT64 at both prefixes, Teredo), site-local, multicast, documentation and benchmarking
ranges, `::` and 0.0.0.0/8. The doors: a client image URL (fetched by an adapter that needs
bytes), an upstream result URL (the content proxy), a thumbnail URL, a redirect from an
upstream, and the copier; each both with the address written in the URL and behind a host name
that resolves to it.

The rig stands in for the private network namespace the issue was probed in: every outbound
connection the relay makes is routed to a canary server on loopback (the test's "network"), so
any address the guard lets through really is fetched, and the canary sees it. Allowed forms
(public unicast, and the public IPv4 behind a mapped or NAT64 address) are in the same table as
controls: they do reach the canary, through the same doors. DNS answers come from a fake
resolver put where the guard's system resolver would be.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from relay.config import Config
from relay.domain import ContentSource, Remote, TaskRef, VideoRequest
from relay.providers.base import NoOptions, Provider, Submitted, Update
from relay.upstream import BlockedAddress, Http, address_allowed
from tests.conftest import Relay, auth
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


@pytest.mark.parametrize(("label", "address", "allowed"), FORMS)
def test_the_guard_over_every_address_form(label: str, address: str, allowed: bool):
    assert address_allowed(address) is allowed, label


@pytest.mark.parametrize(
    "address", ["fe80::1%eth0", "not an address", "", "1.2.3", "::ffff:127.0.0.1%lo"]
)
def test_what_does_not_parse_or_carries_a_zone_is_refused(address: str):
    assert not address_allowed(address)


# --- the rig: a network that leads everywhere to the canary, and a fake DNS ----------------


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


@pytest.fixture
async def network(monkeypatch: pytest.MonkeyPatch) -> Network:
    """Connections to anything but 127.0.0.1 land on 127.0.0.1 at the same port, as if every
    address were a host on the relay's network running the canary."""
    loop = asyncio.get_running_loop()
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


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns()
    monkeypatch.setattr("relay.upstream.system_resolver", lambda: fake)
    return fake


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


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    server = Canary()
    await server.server.start_server()
    yield server
    await server.server.close()


@pytest.fixture
async def bouncer() -> AsyncIterator[Bouncer]:
    server = Bouncer()
    await server.server.start_server()
    yield server
    await server.server.close()


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


@pytest.fixture
def echo(
    providers: dict[str, type[Provider[Any]]], make_config: Callable[..., Config]
) -> Callable[..., Config]:
    providers["echo"] = EchoProvider

    def config(**sections: Any) -> Config:
        sections.setdefault("server", {"allow_private_networks": False})
        sections.setdefault("storage", {"keep_videos": False})
        return make_config(
            channels=[{"name": "echo", "provider": "echo", "models": ["sora-2"]}], **sections
        )

    return config


# --- the doors ---------------------------------------------------------------------------


@dataclass
class Target:
    label: str
    address: str  # what the URL's host is or resolves to
    allowed: bool
    host: str  # the URL's host: the address, or a name resolving to it
    path: str  # unique per target, so the canary's log tells them apart


def targets(via: str, dns: FakeDns, suffix: str) -> list[Target]:
    found = []
    for i, (label, address, allowed) in enumerate(FORMS):
        host = address
        if via == "dns":
            host = f"t{i}.canary.test"
            dns.names[host] = [address]
        found.append(Target(label, address, allowed, host, f"/t{i}{suffix}"))
    if via == "dns":
        # a name with a private and a public address: only the public one is ever tried
        dns.names["mixed.canary.test"] = ["169.254.169.254", "10.0.0.1", "8.8.8.8"]
        found.append(Target("mixed", "8.8.8.8", True, "mixed.canary.test", "/mixed" + suffix))
    return found


async def finished(relay: Relay, prompt: str) -> str:
    video = await relay.create(prompt=prompt)
    done = await relay.wait(video["id"])
    assert done["status"] == "completed", done
    return str(video["id"])


async def through_image(relay: Relay, target_url: str) -> tuple[bool, str]:
    resp = await relay.client.post(
        "/v1/videos",
        json={"prompt": "a kite", "input_reference": {"image_url": target_url}},
        headers=auth(),
    )
    body = await resp.json()
    if resp.status == 200:
        return True, ""
    ok = resp.status == 400 and body["error"]["param"] == "input_reference"
    return False, "" if ok else f"HTTP {resp.status} {body}"


async def through_content(relay: Relay, target_url: str, variant: str) -> tuple[bool, str]:
    video_id = await finished(relay, target_url)
    resp = await relay.client.get(
        f"/v1/videos/{video_id}/content", params={"variant": variant}, headers=auth()
    )
    if resp.status == 200:
        await resp.read()
        return True, ""
    body = await resp.json()
    ok = resp.status == 502 and body["error"]["code"] == "upstream_error"
    return False, "" if ok else f"HTTP {resp.status} {body}"


DOORS = ["image", "image redirect", "result", "thumbnail", "redirect", "copier"]


@pytest.mark.parametrize("via", ["literal", "dns"])
@pytest.mark.parametrize("door", DOORS)
async def test_every_form_through_every_door(
    door: str,
    via: str,
    echo: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    network: Network,
    dns: FakeDns,
    canary: Canary,
    bouncer: Bouncer,
):
    keep = door == "copier"
    relay: Relay = await start_relay(echo(storage={"keep_videos": keep}))
    suffix = ".png" if door.startswith("image") else ".mp4"
    table = targets(via, dns, suffix)
    # the bouncer is reached at a public address (which the network leads to it)
    bounce = url("8.8.4.4", bouncer.port, "/bounce?to=")

    async def one(target: Target) -> tuple[Target, bool, str]:
        target_url = url(target.host, canary.port, target.path)
        if door.endswith("redirect"):
            target_url = bounce + quote(target_url, safe="")
        if door.startswith("image"):
            return (target, *await through_image(relay, target_url))
        if door == "copier":
            video_id = await finished(relay, target_url)
            copies = await settled_copies(relay, video_id)
            return target, copies == ["stored"] * 2, ""
        variant = "thumbnail" if door == "thumbnail" else "video"
        return (target, *await through_content(relay, target_url, variant))

    results = await asyncio.gather(*(one(t) for t in table))
    wrong = []
    for target, fetched, problem in results:
        if problem:
            wrong.append(f"{target.label} ({target.address}): {problem}")
        elif fetched != target.allowed:
            wrong.append(f"{target.label} ({target.address}): fetched={fetched}")
        reached = target.path in canary.paths
        if reached != target.allowed:
            wrong.append(f"{target.label} ({target.address}): canary reached={reached}")
        if not target.allowed and network.reached(target.address):
            wrong.append(f"{target.label} ({target.address}): a connection was opened")
    assert not wrong, "\n".join(wrong)
    if door.endswith("redirect"):
        assert bouncer.hits >= len(table)  # every refusal happened at the redirect's target


async def settled_copies(relay: Relay, video_id: str) -> list[str]:
    """The states of the task's copy jobs once the copier is done with them (none: dropped)."""
    for _ in range(500):
        copies = await copies_of(relay.store, video_id)
        if all(c.state == "stored" for c in copies):
            return [c.state for c in copies]
        await asyncio.sleep(0.02)
    raise AssertionError(f"copies of {video_id} still pending")


async def test_the_rig_reaches_every_form_when_the_guard_is_off(
    echo: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    network: Network,
    canary: Canary,
):
    """Without the guard every form is fetched: the refusals above are the guard's doing, not
    the rig's."""
    relay: Relay = await start_relay(echo(server={"allow_private_networks": True}))
    table = targets("literal", FakeDns(), ".mp4")
    results = await asyncio.gather(
        *(through_content(relay, url(t.host, canary.port, t.path), "video") for t in table)
    )
    missed = [t.label for t, (fetched, _) in zip(table, results, strict=True) if not fetched]
    assert not missed
    assert sorted(canary.paths) == sorted(t.path for t in table)


async def test_a_redirect_from_a_trusted_upstream_is_guarded(
    bouncer: Bouncer, canary: Canary, network: Network, dns: FakeDns
):
    """A channel's own host may be on the LAN; where it redirects to is checked all the same,
    by address and by name."""
    hosts = [address for _, address in REFUSED]
    for i, address in enumerate(list(hosts)):
        dns.names[f"r{i}.canary.test"] = [address]
        hosts.append(f"r{i}.canary.test")
    http = Http(allow_private_networks=False)
    try:
        for host in hosts:
            to = quote(url(host, canary.port, "/v.mp4"), safe="")
            with pytest.raises((BlockedAddress, aiohttp.ClientConnectorError)) as refused:
                async with http.open(
                    url("127.0.0.1", bouncer.port, f"/bounce?to={to}"),
                    headers={"Authorization": "Bearer up-key"},
                    trusted=True,
                    connect_timeout=5,
                    idle_timeout=5,
                ):
                    pass
            if isinstance(refused.value, aiohttp.ClientConnectorError):
                assert isinstance(refused.value.os_error, BlockedAddress), host
        assert bouncer.hits == len(hosts)
        assert canary.paths == [] and network.connects == []
    finally:
        await http.close()


async def test_the_guard_filters_what_the_inner_resolver_says(dns: FakeDns):
    from relay.upstream import GuardedResolver

    dns.names["two.test"] = ["fec0::1", "2606:4700:4700::1111", "10.0.0.1", "8.8.8.8"]
    dns.names["none.test"] = ["fec0::1", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::"]
    guard = GuardedResolver(dns)
    found = await guard.resolve("two.test", 443)
    assert [r["host"] for r in found] == ["2606:4700:4700::1111", "8.8.8.8"]
    with pytest.raises(BlockedAddress) as refused:
        await guard.resolve("none.test", 443)
    assert "none.test" not in str(refused.value)  # no host names in messages or logs


async def test_the_guard_filters_the_system_resolver_by_default():
    from relay.upstream import GuardedResolver

    guard = GuardedResolver()
    try:
        assert isinstance(guard._inner, aiohttp.ThreadedResolver)
        with pytest.raises(BlockedAddress):
            await guard.resolve("localhost", 80)
    finally:
        await guard.close()


# --- URLs that do not parse (item 2) -----------------------------------------------------

MALFORMED = [
    ("an unclosed [", "http://[::1/v.mp4"),
    ("an unclosed [ with a port", "http://[fec0::1:8080/v.mp4"),
    ("a bad IPv6 literal", "http://[zz::1]/v.mp4"),
    ("a bad IPv6 literal, IPv4-ish", "http://[127.0.0.1]/v.mp4"),
    ("a port out of range", "http://cdn.example.com:99999/v.mp4"),
    ("a negative port", "http://cdn.example.com:-1/v.mp4"),
    ("a port that is no number", "http://cdn.example.com:8o/v.mp4"),
    ("port 0", "http://cdn.example.com:0/v.mp4"),
    ("no host", "http:///v.mp4"),
    ("not http", "ftp://cdn.example.com/v.mp4"),
    ("a file URL", "file:///etc/passwd"),
    ("not a URL", "just words"),
    ("a control character", "http://cdn.example.com/v\x00.mp4"),
]


@pytest.mark.parametrize("allow_private", [False, True])
async def test_a_result_url_that_does_not_parse_is_an_upstream_error(
    echo: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    network: Network,
    logs: pytest.LogCaptureFixture,
    allow_private: bool,
):
    relay: Relay = await start_relay(echo(server={"allow_private_networks": allow_private}))
    ids = [await finished(relay, bad) for _, bad in MALFORMED]
    for (label, _), video_id in zip(MALFORMED, ids, strict=True):
        for variant in ("video", "thumbnail"):
            resp = await relay.client.get(
                f"/v1/videos/{video_id}/content", params={"variant": variant}, headers=auth()
            )
            body = await resp.json()
            assert resp.status == 502, (label, body)
            assert body["error"]["code"] == "upstream_error"
            assert "example" not in body["error"]["message"]
    assert network.connects == []
    assert not [r for r in logs.records if r.exc_info or r.levelno >= logging.ERROR]
    relay_lines = [r.getMessage() for r in logs.records if r.name.startswith("relay")]
    for _, bad in MALFORMED:
        assert not [line for line in relay_lines if bad in line]  # no URL in a log line


async def test_a_redirect_to_a_url_that_does_not_parse_is_an_upstream_error(
    echo: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    network: Network,
    bouncer: Bouncer,
    logs: pytest.LogCaptureFixture,
):
    relay: Relay = await start_relay(echo())
    for _, bad in MALFORMED:
        video_id = await finished(
            relay, url("8.8.4.4", bouncer.port, "/bounce?to=" + quote(bad, safe=""))
        )
        resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
        body = await resp.json()
        if bad in ("http:///v.mp4", "just words"):  # as a Location: a path on the same host
            assert resp.status == 404 and body["error"]["code"] == "not_found", body
        else:
            assert resp.status == 502 and body["error"]["code"] == "upstream_error", (bad, body)
    assert bouncer.hits == len(MALFORMED)
    assert not [r for r in logs.records if r.exc_info and r.name.startswith("relay")]


async def test_the_copier_drops_a_url_that_does_not_parse_at_once(
    echo: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    network: Network,
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr("relay.workers.copier.FIRST_RETRY_S", 0.01)
    relay: Relay = await start_relay(echo(storage={"keep_videos": True}))
    ids = [await finished(relay, bad) for _, bad in MALFORMED]
    for video_id in ids:
        assert await settled_copies(relay, video_id) == []  # dropped
    await asyncio.sleep(0.2)  # a retry, were there one, would show by now
    copier = [r for r in logs.records if r.name == "relay.workers.copier"]
    for video_id in ids:
        lines = [r for r in copier if video_id in r.getMessage()]
        assert len(lines) == 2, [r.getMessage() for r in lines]  # one per variant
        assert all("giving up" in r.getMessage() and "unusable" in r.getMessage() for r in lines)
    assert not [r for r in logs.records if r.exc_info]
    assert not [r for r in logs.records if "round failed" in r.getMessage()]
    assert network.connects == []


async def test_an_image_url_that_does_not_parse_is_a_400(
    echo: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    network: Network,
):
    relay: Relay = await start_relay(echo())
    for label, bad in MALFORMED:
        resp = await relay.client.post(
            "/v1/videos",
            json={"prompt": "a kite", "input_reference": {"image_url": bad}},
            headers=auth(),
        )
        body = await resp.json()
        assert resp.status == 400, (label, body)
        assert body["error"]["param"].startswith("input_reference"), (label, body)
    assert network.connects == []


@pytest.mark.parametrize(("label", "bad"), MALFORMED[:8])
async def test_adapters_hand_on_a_result_url_that_does_not_parse(label: str, bad: str):
    """Where an adapter reads a result URL itself (Veo's key check, the gateway's thumbnail
    type, DashScope's expiry), one that does not parse is handed on as is, to fail as an
    upstream error when fetched, not raise a ValueError (a 500, or a poller traceback)."""
    from relay.providers.base import ChannelView
    from relay.providers.compat_relay import CompatRelayOptions, CompatRelayProvider
    from relay.providers.dashscope.response import url_expiry
    from relay.providers.veo import VeoProvider
    from relay.upstream import UnusableUrl

    veo = VeoProvider(ChannelView("v", NoOptions(), api_key="k"), None)
    source = veo._remote(bad)
    assert source.url == bad and not source.trusted and not source.headers
    gateway = CompatRelayProvider(
        ChannelView("g", CompatRelayOptions(), base_url="https://gw.example", api_key="k"), None
    )
    assert gateway.thumbnail({"thumbnail_url": bad}).content_type is None
    assert url_expiry(bad) is None
    http = Http(allow_private_networks=False)
    try:
        with pytest.raises(UnusableUrl):
            async with http.open(bad, headers={}, trusted=False, connect_timeout=1, idle_timeout=1):
                pass
    finally:
        await http.close()
