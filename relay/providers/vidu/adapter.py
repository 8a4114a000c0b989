"""The Vidu adapter: submit on one of four paths, poll the shared query endpoint, hand out the
signed CDN URLs exactly as received (spec/providers/vidu.md)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from relay.providers.base import (
    ContentSource,
    Job,
    NotReady,
    Option,
    Provider,
    Remote,
    Submitted,
    TaskNotFound,
    TaskRef,
    Unsupported,
    Update,
    VariantUnavailable,
    now,
)
from relay.providers.vidu.answers import error_from, parse_query, parse_submit
from relay.providers.vidu.request import build, refusal

log = logging.getLogger("relay.providers.vidu")

DEFAULT_URL_TTL_S = 24 * 3600.0
# the cover is a JPEG, whatever the relay's variant table assumes for thumbnails
CONTENT_TYPES = {"video": "video/mp4", "thumbnail": "image/jpeg"}
_URL_KEYS = {"video": "video_url", "thumbnail": "cover_url"}
_unknown_states: set[str] = set()


class ViduProvider(Provider):
    name = "vidu"
    credentials = ("api_key",)
    default_base_url = "https://api.vidu.com"
    features = frozenset({"image_input", "last_frame", "reference_images"})
    variants = frozenset({"video", "thumbnail"})
    options: ClassVar[dict[str, Option]] = {
        "url_ttl_s": Option(
            (int, float),
            DEFAULT_URL_TTL_S,
            "how long Vidu's signed result URLs stay valid (current pages say 24 h, older 1 h)",
            minimum=60,
        ),
    }
    typical_run_s = 90.0
    result_ttl_s = DEFAULT_URL_TTL_S

    def check(self, job: Job) -> None:
        super().check(job)
        why = refusal(job)
        if why:
            raise Unsupported(why)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.channel.api_key}", "Accept": "application/json"}

    @property
    def _ttl_s(self) -> float:
        return float(self.channel.options.get("url_ttl_s", DEFAULT_URL_TTL_S))

    async def submit(self, job: Job) -> Submitted:
        native = build(job)
        if native.dropped:
            log.debug("vidu has no field for %s; dropped", ", ".join(native.dropped))
        url = f"{self.base_url}/ent/v2/{native.path}"
        reply = await self.http.request("POST", url, headers=self._headers(), json=native.body)
        body = reply.json()
        if reply.status != 200:
            raise error_from(reply.status, reply.headers, body, reply.text())
        accepted = parse_submit(body)
        return Submitted(
            upstream_id=accepted.task_id,
            seconds=str(native.seconds),
            size=native.size,
            status=accepted.status,
            # Submitted has no created_at: the upstream's own is kept for the record
            state={"endpoint": native.path, "upstream_created_at": accepted.created_at},
        )

    async def _query(self, upstream_id: str) -> Update:
        reply = await self.http.request(
            "GET", f"{self.base_url}/ent/v2/tasks/{upstream_id}/creations", headers=self._headers()
        )
        body = reply.json()
        if reply.status != 200:
            raise error_from(reply.status, reply.headers, body, reply.text())
        update = parse_query(body, now=now(), ttl_s=self._ttl_s)
        if update.status is None:
            state = str(body.get("state"))[:40] if isinstance(body, dict) else "?"
            if state not in _unknown_states:
                _unknown_states.add(state)
                log.info("vidu answered an unknown state %r; keeping the previous status", state)
        return update

    async def poll(self, task: TaskRef) -> Update:
        return await self._query(task.upstream_id)

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        self.variant_check(variant)
        return _remote(task.state, variant)

    async def refresh_content(self, task: TaskRef, variant: str) -> ContentSource | None:
        """Query again: Vidu may sign fresh URLs (unconfirmed); None when it has nothing."""
        self.variant_check(variant)
        try:
            update = await self._query(task.upstream_id)
        except TaskNotFound:
            return None
        if update.status != "completed":
            return None
        try:
            return _remote(update.state, variant)
        except (NotReady, VariantUnavailable):
            return None


def _remote(state: Mapping[str, Any], variant: str) -> Remote:
    url = state.get(_URL_KEYS[variant])
    if not isinstance(url, str) or not url:
        if variant != "video" and state.get("video_url"):
            raise VariantUnavailable(f"vidu listed no {variant} for this video")
        raise NotReady("vidu has not listed a result for this task yet")
    # signed CDN URL: no upstream key, and the URL goes out byte for byte (content.py)
    return Remote(url, content_type=CONTENT_TYPES[variant])
