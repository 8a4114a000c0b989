"""Prometheus metrics: one registry per app, fed by the events seam, a middleware for the HTTP
side, and a few reads at scrape time (the channel table; task counts and stored bytes from the
store).

Nothing in the use cases calls this module: it subscribes to events (relay/events.py) and reads
state only when scraped. The exposition itself is the Prometheus client library's.

Choices the contract leaves open:
- `relay_channel_state` maps the routing health states: cooling and rate_limited -> `cooling`
  (a rate-limit pause that is over counts as ready, as routing treats it); refused credentials
  and an exhausted quota -> `auth_refused` (both take the channel out until the account is fixed
  or topped up, probed every 15 minutes); a channel at its `max_in_flight` -> `full`; a channel
  with `enabled = false` -> `disabled`. Every channel reports all five states, the current one 1.
- `relay_upstream_requests_total` counts adapter operations (one submit may be several HTTP
  calls, e.g. an image upload); outcome by the provider error's class: RateLimited ->
  rate_limited; AuthFailed and QuotaExceeded -> auth; Rejected and Unsupported -> rejected;
  TaskNotFound, NotReady, VariantUnavailable -> not_found; Unavailable and anything else ->
  unavailable. Bytes fetched from an upstream result URL are `relay_content_bytes_total`.
- `relay_tasks_created_total` counts tasks an upstream accepted, on the channel that accepted
  them (after any failover); a submit every channel refused created nothing, and a task failed
  because its submit went unconfirmed shows only as finished.
- `relay_content_bytes_total{source="stored"}` is content served from local files: stored
  copies, and the demo's shipped clips.
- `relay_webhook_deliveries_total{outcome}`: `delivered`, or `failed` (given up after the last
  attempt).
- `relay_http_request_duration_seconds` is the time until the response's headers go out (for a
  download, the time to its first byte; the body follows), from when the relay's middleware
  (relay/web/middleware.py) took the request.
"""

from __future__ import annotations

import ipaddress
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from relay.events import (
    BytesStreamed,
    DownloadEnded,
    DownloadStarted,
    Events,
    PollRan,
    TaskFinished,
    TaskSubmitted,
    UpstreamOp,
    WebhookDelivered,
)
from relay.providers.errors import (
    AuthFailed,
    NotReady,
    QuotaExceeded,
    RateLimited,
    Rejected,
    TaskNotFound,
    Unsupported,
    VariantUnavailable,
)
from relay.routing import COOLING, CREDENTIALS, QUOTA, RATE_LIMITED, READY, Channel
from relay.store import Store

CHANNEL_STATES = ("ready", "cooling", "auth_refused", "disabled", "full")
TASK_STATUSES = ("queued", "in_progress", "completed", "failed")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_FORWARDED = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
_UPSTREAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_LAG_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)

# The `_created` series the client adds to each counter and histogram double the series count and
# say when this process started; the process collector already says that.
disable_created_metrics()  # type: ignore[no-untyped-call]


def outcome(error: Exception | None) -> str:
    """The outcome class of one upstream operation, from what the adapter raised."""
    if error is None:
        return "ok"
    if isinstance(error, RateLimited):
        return "rate_limited"
    if isinstance(error, AuthFailed | QuotaExceeded):
        return "auth"
    if isinstance(error, Rejected | Unsupported):
        return "rejected"
    if isinstance(error, TaskNotFound | NotReady | VariantUnavailable):
        return "not_found"
    return "unavailable"


def channel_state(channel: Channel, now: float) -> str:
    if not channel.config.enabled:
        return "disabled"
    health = channel.health
    state = health.state
    if state == RATE_LIMITED and now >= health.until:
        state = READY  # routing lets it try again at once
    if state in (COOLING, RATE_LIMITED):
        return "cooling"
    if state in (CREDENTIALS, QUOTA):
        return "auth_refused"
    return "full" if channel.full else "ready"


class BootTimeProcessCollector(ProcessCollector):
    """The client library's `process_*`, also under systemd's `ProcSubset=pid`: that hides
    /proc/stat, where the library reads the boot time, and without it the library reports
    nothing at all. The kernel's boot-time clock gives the same figure without /proc."""

    def _boot_time(self) -> float:
        try:
            btime = super()._boot_time()  # type: ignore[no-untyped-call]
        except OSError:
            btime = None
        if btime:
            return float(btime)
        return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)


class _Channels(Collector):
    """The channel table as it is at scrape time (a reload swaps the table)."""

    def __init__(self, table: Callable[[], Iterable[Channel]], clock: Callable[[], float]) -> None:
        self.table = table
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "relay_channel_state",
            "1 for the channel's current state (ready, cooling, auth_refused, disabled, full)",
            labels=["channel", "state"],
        )
        in_flight = GaugeMetricFamily(
            "relay_channel_in_flight",
            "Tasks running on the channel, and submits under way",
            labels=["channel"],
        )
        now = self.clock()
        for channel in self.table():
            current = channel_state(channel, now)
            for name in CHANNEL_STATES:
                state.add_metric([channel.name, name], 1.0 if name == current else 0.0)
            in_flight.add_metric([channel.name], float(channel.in_flight))
        yield state
        yield in_flight


class _Http(Collector):
    """`relay_http_requests_total` and `relay_http_request_duration_seconds`, counted in plain
    numbers at every request and turned into samples only when scraped: the client library's
    metrics take a lock for each of the three increments a request makes (2.8 us a request
    against 0.7 here). Requests are counted on the event loop only, so no lock is needed."""

    BUCKETS = Histogram.DEFAULT_BUCKETS  # the same buckets as the client library's default

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        # per route: the count in each bucket (not cumulative), then the sum of the durations
        self.durations: dict[str, list[float]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        counts = self.durations.get(route)
        if counts is None:
            counts = self.durations[route] = [0.0] * (len(self.BUCKETS) + 1)
        counts[bisect_left(self.BUCKETS, seconds)] += 1  # the first bucket with le >= seconds
        counts[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "relay_http_requests",
            "HTTP requests by route pattern, method and status",
            labels=["route", "method", "status"],
        )
        for (route, method, status), count in self.requests.items():
            requests.add_metric([route, method, str(status)], count)
        durations = HistogramMetricFamily(
            "relay_http_request_duration_seconds",
            "Time to the handler's answer, by route pattern",
            labels=["route"],
        )
        for route, counts in self.durations.items():
            buckets: list[tuple[str, float]] = []
            total = 0.0
            for bound, in_bucket in zip(self.BUCKETS, counts, strict=False):
                total += in_bucket
                buckets.append((floatToGoString(bound), total))  # type: ignore[no-untyped-call]
            durations.add_metric([route], buckets, counts[-1])
        yield requests
        yield durations


class Metrics:
    """The app's registry and every metric in it."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.http = _Http()
        r.register(self.http)
        self.tasks = Gauge("relay_tasks", "Tasks in the store by status", ["status"], registry=r)
        self.created = Counter(
            "relay_tasks_created",
            "Tasks an upstream accepted, by public model and channel",
            ["model", "channel"],
            registry=r,
        )
        self.finished = Counter(
            "relay_tasks_finished",
            "Tasks finished, by channel, status and error code",
            ["channel", "status", "code"],
            registry=r,
        )
        self.upstream = Counter(
            "relay_upstream_requests",
            "Upstream operations by channel, op and outcome",
            ["channel", "op", "outcome"],
            registry=r,
        )
        self.upstream_duration = Histogram(
            "relay_upstream_request_duration_seconds",
            "Upstream operation durations by channel and op",
            ["channel", "op"],
            buckets=_UPSTREAM_BUCKETS,
            registry=r,
        )
        self.poll_lag = Histogram(
            "relay_poll_lag_seconds",
            "How late a due poll ran",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.content_bytes = Counter(
            "relay_content_bytes",
            "Content bytes sent to clients, by source (upstream, stored)",
            ["source"],
            registry=r,
        )
        self.streams = Gauge("relay_content_streams", "Downloads in progress", registry=r)
        self.stored_bytes = Gauge("relay_stored_bytes", "Bytes of stored video copies", registry=r)
        self.webhooks = Counter(
            "relay_webhook_deliveries",
            "Webhook deliveries by outcome (delivered, failed: given up)",
            ["outcome"],
            registry=r,
        )
        BootTimeProcessCollector(registry=r)
        for source in ("upstream", "stored"):
            self.content_bytes.labels(source)
        for result in ("delivered", "failed"):
            self.webhooks.labels(result)
        self.expose = make_aiohttp_handler(r)

    # --- feeding ------------------------------------------------------------------------------

    def watch(self, events: Events) -> None:
        events.subscribe(TaskSubmitted, self._submitted)
        events.subscribe(TaskFinished, self._finished)
        events.subscribe(UpstreamOp, self._upstream)
        events.subscribe(PollRan, lambda e: self.poll_lag.observe(e.lag_s))
        events.subscribe(BytesStreamed, self._bytes)
        events.subscribe(DownloadStarted, lambda _: self.streams.inc())
        events.subscribe(DownloadEnded, lambda _: self.streams.dec())
        events.subscribe(WebhookDelivered, self._webhook)

    def watch_channels(
        self, table: Callable[[], Iterable[Channel]], clock: Callable[[], float]
    ) -> None:
        self.registry.register(_Channels(table, clock))

    def _submitted(self, event: TaskSubmitted) -> None:
        self.created.labels(event.model, event.channel).inc()

    def _finished(self, event: TaskFinished) -> None:
        self.finished.labels(event.channel, event.status, event.error_code or "").inc()

    def _upstream(self, event: UpstreamOp) -> None:
        self.upstream.labels(event.channel, event.op, outcome(event.error)).inc()
        self.upstream_duration.labels(event.channel, event.op).observe(event.duration_s)

    def _bytes(self, event: BytesStreamed) -> None:
        source = "upstream" if event.source == "upstream" else "stored"
        self.content_bytes.labels(source).inc(event.bytes)

    def _webhook(self, event: WebhookDelivered) -> None:
        self.webhooks.labels("delivered" if event.ok else "failed").inc()

    # --- at scrape time -------------------------------------------------------------------

    async def read_store(self, store: Store) -> None:
        """Task counts and stored bytes, shared by every process on the store."""
        counts = await store.count_by_status()
        for status in sorted({*TASK_STATUSES, *counts}):
            self.tasks.labels(status).set(counts.get(status, 0))
        self.stored_bytes.set(await store.stored_bytes())

    def observe_http(self, route: str, method: str, status: int, duration_s: float) -> None:
        self.http.observe(route, method, status, duration_s)


METRICS = web.AppKey("metrics", Metrics)


STARTED = web.RequestKey("started", float)  # time.perf_counter() when a request came in


def prepared(request: web.Request, response: web.StreamResponse) -> None:
    """Count and time a request by its route pattern (never the raw path: ids would make a series
    each) when its headers go out: only then is the status final (a file's 206, 304 or 416 is
    decided as it is sent). An unknown path is `unmatched`, an unknown method `other`. The
    relay's middleware notes when the request came in (`STARTED`)."""
    started = request.get(STARTED)
    if started is None:
        return
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    method = request.method if request.method in _METHODS else "other"
    duration = time.perf_counter() - started
    request.app[METRICS].observe_http(route, method, response.status, duration)


def from_loopback(request: web.BaseRequest) -> bool:
    """A client on this host, not a reverse proxy on this host passing a remote client on."""
    if any(name in request.headers for name in _FORWARDED):
        return False
    try:
        address = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False  # a unix socket: whoever may open it is not told apart here
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback  # a dual-stack socket's IPv4 client
    return address.is_loopback
