"""Webhooks: `video.completed` and `video.failed` events, POSTed at least once.

The events of a finished task are written to an outbox in the same transaction that finishes it
(Store.finish), so a crash cannot lose them. A background sender posts each one with the
Standard Webhooks signature that OpenAI's own webhooks use (`webhook-id`, `webhook-timestamp`,
`webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`; a `whsec_` secret is
base64), so `openai.webhooks.unwrap()` verifies them. The body is OpenAI's event shape:
`{"id": "evt_...", "object": "event", "created_at", "type", "data": {"id": "video_..."}}`.
A failed POST (no 2xx within 10 s) is retried: 5 s, doubling, at most 1 h apart, for a day.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Iterable

import aiohttp
import orjson

from relay.config import Webhook
from relay.events import Events, WebhookDelivered
from relay.store import Delivery, NewDelivery, Store
from relay.upstream import Http
from relay.workers.base import Worker

log = logging.getLogger("relay.webhooks")

EVENT_TYPES = {"completed": "video.completed", "failed": "video.failed"}
SEND_TIMEOUT_S = 10.0
FIRST_RETRY_S = 5.0
MAX_RETRY_S = 3600.0
GIVE_UP_AFTER_S = 24 * 3600.0
LEASE_S = 60.0
CONCURRENCY = 4


def deliveries(
    video_id: str, status: str, hooks: Iterable[Webhook], now: float
) -> list[NewDelivery]:
    """The outbox rows for one finished task: one event, sent to every configured hook."""
    kind = EVENT_TYPES.get(status)
    hooks = list(hooks)
    if kind is None or not hooks:
        return []
    event_id = "evt_" + secrets.token_hex(16)
    body = orjson.dumps(
        {
            "id": event_id,
            "object": "event",
            "created_at": int(now),
            "type": kind,
            "data": {"id": video_id},
        }
    ).decode()
    return [NewDelivery(event_id, h.url, body) for h in hooks]


def signature(secret: str, event_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    signed = f"{event_id}.{timestamp}.{body}".encode()
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class Sender(Worker):
    name = "webhooks"

    def __init__(
        self,
        store: Store,
        http: Http,
        hooks: Callable[[], tuple[Webhook, ...]],
        *,
        events: Events,
        instance: str,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(clock)
        self.store = store
        self.http = http
        self.hooks = hooks
        self.events = events
        self.instance = instance

    async def next_at(self) -> float | None:
        return await self.store.next_delivery_at()

    async def round(self) -> int:
        """Send what is due; returns how many deliveries were attempted."""
        due = await self.store.claim_deliveries(
            now=self.clock(), lease_owner=self.instance, lease_s=LEASE_S, limit=CONCURRENCY
        )
        await asyncio.gather(*(self._send(d) for d in due))
        return len(due)

    async def _send(self, delivery: Delivery) -> None:
        hook = next((h for h in self.hooks() if h.url == delivery.url), None)
        if hook is None:
            log.warning("dropping event %s: its webhook is no longer configured", delivery.event_id)
            await self.store.delivered(delivery.id)
            return
        timestamp = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(
                hook.secret, delivery.event_id, timestamp, delivery.body
            ),
        }
        error = await self._post(hook.url, delivery.body, headers)
        if error is None:
            await self.store.delivered(delivery.id)
            self.events.emit(WebhookDelivered(delivery.event_id, True, delivery.attempts + 1))
            return
        now = self.clock()
        if now - delivery.created_at >= GIVE_UP_AFTER_S:
            log.error(
                "giving up on event %s after %d attempts: %s",
                delivery.event_id,
                delivery.attempts + 1,
                error,
            )
            await self.store.delivered(delivery.id)
            self.events.emit(WebhookDelivered(delivery.event_id, False, delivery.attempts + 1))
            return
        wait = min(MAX_RETRY_S, FIRST_RETRY_S * 2.0**delivery.attempts)
        if delivery.attempts == 0:
            log.warning("webhook delivery of %s failed (%s); retrying", delivery.event_id, error)
        await self.store.retry_delivery(delivery.id, now + wait, error)

    async def _post(self, url: str, body: str, headers: dict[str, str]) -> str | None:
        """None when the receiver took it (a 2xx), else a short reason for the log."""
        try:
            async with self.http.trusted.post(
                url,
                data=body.encode(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_S),
                allow_redirects=False,
            ) as resp:
                await resp.read()
                return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return type(exc).__name__
