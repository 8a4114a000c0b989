"""The private-network guard over every address form, through every door a URL gets in by.

The forms (rig.FORMS): IPv4 private and special ranges, and the IPv6 ways to write them (mapped,
compatible, 6to4, NAT64 at both prefixes, Teredo), site-local, multicast, documentation and
benchmarking ranges, `::` and 0.0.0.0/8; allowed forms (public unicast, and the public IPv4
behind a mapped or NAT64 address) are in the same table as controls, and do reach the canary.
The doors: a client image URL (fetched by an adapter that needs bytes, also through a
redirect), an upstream result URL (the content proxy), a thumbnail URL, a redirect from an
upstream, and the copier; each with the address written in the URL and behind a host name
that resolves to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from relay.config import Config
from relay.upstream import BlockedAddress, GuardedResolver, Http, address_allowed
from tests.conftest import Relay, auth
from tests.ssrf.rig import (
    FORMS,
    REFUSED,
    Bouncer,
    Canary,
    FakeDns,
    Network,
    finished,
    settled_copies,
    url,
)


@pytest.mark.parametrize(("label", "address", "allowed"), FORMS)
def test_the_guard_over_every_address_form(label: str, address: str, allowed: bool):
    assert address_allowed(address) is allowed, label


@pytest.mark.parametrize(
    "address", ["fe80::1%eth0", "not an address", "", "1.2.3", "::ffff:127.0.0.1%lo"]
)
def test_what_does_not_parse_or_carries_a_zone_is_refused(address: str):
    assert not address_allowed(address)


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
    dns.names["two.test"] = ["fec0::1", "2606:4700:4700::1111", "10.0.0.1", "8.8.8.8"]
    dns.names["none.test"] = ["fec0::1", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::"]
    guard = GuardedResolver(dns)
    found = await guard.resolve("two.test", 443)
    assert [r["host"] for r in found] == ["2606:4700:4700::1111", "8.8.8.8"]
    with pytest.raises(BlockedAddress) as refused:
        await guard.resolve("none.test", 443)
    assert "none.test" not in str(refused.value)  # no host names in messages or logs


async def test_the_guard_filters_the_system_resolver_by_default():
    guard = GuardedResolver()
    try:
        assert isinstance(guard._inner, aiohttp.ThreadedResolver)
        with pytest.raises(BlockedAddress):
            await guard.resolve("localhost", 80)
    finally:
        await guard.close()
