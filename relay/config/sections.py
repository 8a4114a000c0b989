"""Reading each section of the config: typed values with bounds, and the checks across entries
(duplicate names, a default model some channel serves). Every problem names its key path."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from relay.config.toml import Problems, Recorder, Table
from relay.config.types import (
    ChannelConfig,
    DashboardConfig,
    Defaults,
    LimitsConfig,
    PollingConfig,
    S3Config,
    ServerConfig,
    StaticKey,
    StorageConfig,
    StoreConfig,
    Webhook,
)
from relay.domain import SHAPES
from relay.providers.base import Provider, option_specs

ProviderClasses = Mapping[str, type[Provider[Any]]]

_SIZE = re.compile(r"^(\d{2,5})x(\d{2,5})$")
_RATIO = re.compile(r"^(\d{1,3}):(\d{1,3})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
MIN_KEY_LENGTH = 16
LOG_LEVELS = ("debug", "info", "warning", "error")


def server(t: Table) -> ServerConfig:
    host = t.string("host", "127.0.0.1", nonempty=True)
    port = t.integer("port", 8080, minimum=0, maximum=65535)
    public_url = t.string("public_url", "", check=_http_url)
    if not public_url:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
        shown = f"[{shown}]" if ":" in shown else shown
        public_url = f"http://{shown}:{port}"
    server = ServerConfig(
        host=host,
        port=port,
        public_url=public_url.rstrip("/"),
        # "~/relay" in a unit file or a shell-less service would otherwise make a "~" directory
        data_dir=Path(t.string("data_dir", "./data", nonempty=True)).expanduser(),
        max_upload_mb=t.number("max_upload_mb", 10, minimum=0.001, maximum=1024),
        max_media_mb=t.number("max_media_mb", 20, minimum=0.001, maximum=1024),
        trust_proxy=t.boolean("trust_proxy", False),
        allow_private_networks=t.boolean("allow_private_networks", False),
        log_level=t.choice("log_level", "info", LOG_LEVELS),
        log_format=t.choice("log_format", "text", ("text", "json")),
        metrics_loopback=t.boolean("metrics_loopback", False),
    )
    t.finish()
    return server


def store(t: Table, data_dir: Path) -> StoreConfig:
    url = t.string("url", "", check=_store_url)
    store = StoreConfig(
        url=url or f"sqlite:///{data_dir / 'relay.db'}",
        pool_size=t.integer("pool_size", 10, minimum=1, maximum=1000),
    )
    t.finish()
    return store


def dashboard(t: Table) -> DashboardConfig:
    dashboard = DashboardConfig(
        enabled=t.boolean("enabled", True),
        session_hours=t.number("session_hours", 168, minimum=0.01, maximum=24 * 366),
    )
    t.finish()
    return dashboard


def defaults(t: Table) -> Defaults:
    seconds = t.get("seconds", "4")
    if isinstance(seconds, int) and not isinstance(seconds, bool):
        seconds = str(seconds)
    if not (isinstance(seconds, str) and seconds.isascii() and seconds.isdigit()) or (
        int(seconds) <= 0
    ):
        t.problem("seconds", 'a positive whole number of seconds, like "4"', seconds)
        seconds = "4"
    defaults = Defaults(
        model=t.string("model", "sora-2", nonempty=True),
        seconds=str(int(seconds)),
        size=t.string("size", "720x1280", check=_size, nonempty=True),
    )
    t.finish()
    return defaults


def storage(t: Table) -> StorageConfig:
    backend = t.choice("backend", "local", ("local", "s3"))
    s3_table = t.table("s3")
    s3_config = s3(s3_table) if s3_table.data else None
    if backend == "s3" and not s3_table.data and not isinstance(t, Recorder):
        t.problem("s3", 'required with backend = "s3": a table { endpoint, bucket, ... }', None)
    storage = StorageConfig(
        keep_videos=t.boolean("keep_videos", True),
        keep_days=t.integer("keep_days", 30, minimum=0),
        max_gb=t.number("max_gb", 20, minimum=0),
        backend=backend,
        s3=s3_config,
    )
    t.finish()
    return storage


def s3(t: Table) -> S3Config:
    s3 = S3Config(
        endpoint=t.string("endpoint", "", check=_http_url, nonempty=True).rstrip("/"),
        bucket=t.string("bucket", "", nonempty=True),
        region=t.string("region", "auto", nonempty=True),
        access_key=t.string("access_key", "", secret=True) or None,
        secret_key=t.string("secret_key", "", secret=True) or None,
        path_style=t.boolean("path_style", False),
    )
    t.finish()
    return s3


def polling(t: Table) -> PollingConfig:
    interval = t.number("interval_s", 5, minimum=0.01)
    polling = PollingConfig(
        interval_s=interval,
        max_interval_s=t.number(
            "max_interval_s", max(60.0, interval), minimum=interval, minimum_name="interval_s"
        ),
        timeout_h=t.number("timeout_h", 24, minimum=0.001),
        concurrency=t.integer("concurrency", 16, minimum=1, maximum=1024),
    )
    t.finish()
    return polling


def limits(t: Table) -> LimitsConfig:
    limits = LimitsConfig(requests_per_minute=t.integer("requests_per_minute", 120, minimum=0))
    t.finish()
    return limits


def key(t: Table) -> StaticKey | None:
    name = t.string("name", "", check=_name, nonempty=True)
    key = t.string("key", "", secret=True)
    digest = t.string("key_sha256", "")
    user = t.string("user", "", check=_name, nonempty=True)
    role = t.choice("role", "user", ("user", "admin"))
    t.finish()
    if bool(key) == bool(digest):
        t.problem("key", "exactly one of key or key_sha256 is required", None)
        return None
    if key:
        if len(key) < MIN_KEY_LENGTH:
            t.problem(  # the length only: even a short key is not for the log
                "key",
                f"at least {MIN_KEY_LENGTH} characters (try `relay keys create`) "
                f"(got {len(key)} characters)",
                None,
            )
            return None
        digest = hashlib.sha256(key.encode()).hexdigest()
    elif not _SHA256.match(digest):
        t.problem("key_sha256", "64 hex digits", digest)
        return None
    if not (name and user):
        return None
    return StaticKey(name=name, sha256=digest.lower(), user=user, role=role)


def webhook(t: Table) -> Webhook:
    hook = Webhook(
        url=t.string("url", "", check=_http_url, nonempty=True),
        secret=t.string("secret", "", nonempty=True, secret=True),
    )
    t.finish()
    return hook


def channel(t: Table, providers: ProviderClasses) -> ChannelConfig:
    """One channel; a bad one still comes back (with its problems recorded) so the checks across
    channels see every name and model."""
    name = t.string("name", "", check=_name, nonempty=True)
    provider = t.string("provider", "", nonempty=True)
    cls = providers.get(provider)
    if provider and cls is None and not isinstance(t, Recorder):
        t.problem("provider", f"one of {', '.join(sorted(providers))}", provider)
    base_url = t.string("base_url", "", check=_http_url) or None
    creds = {
        k: t.string(k, "", secret=True) or None for k in ("api_key", "access_key", "secret_key")
    }
    models = t.string_list("models", nonempty=True)
    model_map = _model_map(t, models)
    channel_options = t.table("options")
    options: dict[str, Any] = {}
    if cls is not None:
        specs = option_specs(cls.Options)
        for key, spec in specs.items():
            options[key] = channel_options.option(key, spec)
        needed = cls.credentials_needed(options)
        for cred in ("api_key", "access_key", "secret_key"):
            if cred in needed and not creds[cred] and not isinstance(t, Recorder):
                t.problem(cred, f"required by provider {provider!r}", None)
        if base_url is None and cls.default_base_url is None and cls.needs_network:
            t.problem("base_url", f"required by provider {provider!r}", None)
        accepted = ", ".join(sorted(specs))
        channel_options.finish(
            hint=f"provider {provider!r} accepts: {accepted}"
            if accepted
            else f"provider {provider!r} takes no options"
        )
    # With an unknown provider there is nothing to check the options against: the provider
    # problem above is the one to fix first.
    channel = ChannelConfig(
        name=name,
        provider=provider,
        base_url=base_url.rstrip("/") if base_url else None,
        models=tuple(models),
        model_map=model_map,
        priority=t.integer("priority", 0),
        weight=t.integer("weight", 1, minimum=1),
        max_in_flight=t.integer("max_in_flight", 0, minimum=0),
        timeout_s=t.number("timeout_s", 30, minimum=0.1, maximum=3600),
        enabled=t.boolean("enabled", True),
        options=options,
        **creds,
    )
    t.finish()
    return channel


def _model_map(t: Table, models: list[str]) -> dict[str, str | dict[str, str]]:
    raw = t.get("model_map", {})
    if not isinstance(raw, dict):
        t.problem("model_map", "a table of public name = upstream model", raw)
        return {}
    result: dict[str, str | dict[str, str]] = {}
    for public, value in raw.items():
        path = f"model_map.{public}"
        if public not in models:
            t.problem(path, "a model listed in models", public)
        if isinstance(value, str) and value:
            result[public] = value
        elif (
            isinstance(value, dict)
            and value
            and all(k in SHAPES and isinstance(v, str) and v for k, v in value.items())
        ):
            result[public] = dict(value)
        else:
            t.problem(
                path,
                f"an upstream model name, or a table of them by job shape ({', '.join(SHAPES)})",
                value,
            )
    return result


def check_channel_set(
    channels: tuple[ChannelConfig, ...], defaults: Defaults, model_set: bool, problems: Problems
) -> None:
    seen: dict[str, int] = {}
    for i, channel in enumerate(channels):
        if channel.name in seen:
            problems.add(
                f"channels[{i}].name",
                f"already used by channels[{seen[channel.name]}] (got {channel.name!r})",
            )
        elif channel.name:
            seen[channel.name] = i
    if not channels:
        if problems.under("channels"):
            return  # `channels` is there but not an array of tables: that problem says it all
        problems.add(
            "channels",
            "at least one channel is required (the demo channel needs no account: "
            '[[channels]] name = "demo", provider = "demo", models = ["sora-2"])',
        )
        return
    if any(problems.under(f"channels[{i}].models") for i in range(len(channels))):
        return  # a channel's models are unknown, so whether one serves defaults.model is too
    served = {m for c in channels for m in c.models}
    if defaults.model not in served:
        names = ", ".join(sorted(served))
        if model_set:
            text = f"no channel serves this model (got {defaults.model!r}; served: {names})"
        else:  # the user never wrote it: say where the name comes from and how to change it
            text = f"no channel serves the default model {defaults.model!r}; set one of: {names}"
        problems.add("defaults.model", text)


def check_keys(keys: list[StaticKey | None], problems: Problems) -> None:
    names: dict[str, int] = {}
    digests: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key is None:
            continue
        if key.name in names:
            problems.add(
                f"keys[{i}].name", f"already used by keys[{names[key.name]}] (got {key.name!r})"
            )
        else:
            names[key.name] = i
        if key.sha256 in digests:
            # the key itself stays hidden; saying which entry holds it is enough
            problems.add(f"keys[{i}].key", f"the same key as keys[{digests[key.sha256]}]")
        else:
            digests[key.sha256] = i


# --- checks used by several keys --------------------------------------------------------------


def _http_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL"
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in 0..65535
    except ValueError:
        return "not an http(s) URL (bad port)"
    return None


def _store_url(value: str) -> str | None:
    if value.startswith(("sqlite:///", "postgresql://", "postgres://")):
        return None
    return "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


def _size(value: str) -> str | None:
    match = _SIZE.match(value) or _RATIO.match(value)
    if match and int(match.group(1)) > 0 and int(match.group(2)) > 0:
        return None
    return 'a size like "1280x720" or a ratio like "16:9"'


def invalid_name(value: str) -> str | None:
    """Why a user, key or channel name is not allowed, or None."""
    return _name(value)


def _name(value: str) -> str | None:
    if _NAME.match(value):
        return None
    return "letters, digits, '_', '.', '-' (at most 64)"
