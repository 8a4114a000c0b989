"""Load the config file: parse TOML -> expand ${ENV} -> validate into frozen dataclasses.

Validation happens once, here. Every problem names its key path and the bad value
(`channels[2].base_url: not an http(s) URL (got 'htp://x')`), unknown keys are errors, and all
problems of a file are reported together so `relay check-config` shows them in one run.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from relay.domain import SHAPES
from relay.errors import ConfigError
from relay.providers import REGISTRY
from relay.providers.base import Provider, option_specs
from relay.tomlcheck import Problems, Recorder, Table, expand

ProviderClasses = Mapping[str, type[Provider[Any]]]

T = TypeVar("T")

_SIZE = re.compile(r"^(\d{2,5})x(\d{2,5})$")
_RATIO = re.compile(r"^(\d{1,3}):(\d{1,3})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
MIN_KEY_LENGTH = 16


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    data_dir: Path = Path("./data")
    max_upload_mb: float = 10
    trust_proxy: bool = False
    allow_private_networks: bool = False

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


@dataclass(frozen=True)
class Defaults:
    model: str = "sora-2"
    seconds: str = "4"
    size: str = "720x1280"


@dataclass(frozen=True)
class StorageConfig:
    keep_videos: bool = True
    keep_days: int = 30
    max_gb: float = 20


@dataclass(frozen=True)
class PollingConfig:
    interval_s: float = 5
    max_interval_s: float = 60
    timeout_h: float = 24
    concurrency: int = 16


@dataclass(frozen=True)
class LimitsConfig:
    requests_per_minute: int = 120


@dataclass(frozen=True)
class StaticKey:
    name: str
    sha256: str  # hex digest of the key; the key itself is not kept
    user: str
    role: str = "user"


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    provider: str
    models: tuple[str, ...]
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    # public name -> upstream name, or -> {shape: upstream name} (see domain.SHAPES)
    model_map: Mapping[str, str | Mapping[str, str]] = field(default_factory=dict)
    priority: int = 0
    weight: int = 1
    max_in_flight: int = 0  # 0 = no limit
    timeout_s: float = 30
    enabled: bool = True
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    server: ServerConfig = ServerConfig()
    defaults: Defaults = Defaults()
    storage: StorageConfig = StorageConfig()
    polling: PollingConfig = PollingConfig()
    limits: LimitsConfig = LimitsConfig()
    keys: tuple[StaticKey, ...] = ()
    webhooks: tuple[Webhook, ...] = ()
    channels: tuple[ChannelConfig, ...] = ()
    source: str = "embedded defaults"


# What `relay serve` runs on when no config file exists: loopback, ./data, one demo channel.
EMBEDDED_DEFAULTS: dict[str, Any] = {
    "channels": [{"name": "demo", "provider": "demo", "models": ["sora-2", "demo"]}],
}


def find_config_path(explicit: str | None) -> Path | None:
    """--config, else $RELAY_CONFIG, else ./config.toml, else /etc/relay/config.toml, else None."""
    if explicit:
        return Path(explicit)
    if env := os.environ.get("RELAY_CONFIG"):
        return Path(env)
    for candidate in (Path("config.toml"), Path("/etc/relay/config.toml")):
        if candidate.is_file():
            return candidate
    return None


def load(
    path: Path | None,
    env: Mapping[str, str] | None = None,
    *,
    providers: ProviderClasses = REGISTRY,
) -> Config:
    """Load and validate a config file, or the embedded defaults when `path` is None."""
    if path is None:
        return parse(EMBEDDED_DEFAULTS, env=env, source="embedded defaults", providers=providers)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: not valid TOML ({exc})"]) from None
    return parse(raw, env=env, source=str(path), providers=providers)


def parse(
    raw: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    source: str = "config",
    providers: ProviderClasses = REGISTRY,
) -> Config:
    """Validate an already-parsed TOML document; `env` (default: os.environ) fills ${NAME};
    channels name a provider of `providers` (the registry; tests add their own)."""
    problems = Problems()
    expanded = expand(raw, os.environ if env is None else env, "", problems)
    root = Table(expanded, "", problems)
    server = _server(root.table("server"))
    defaults_table = root.table("defaults")
    defaults = _defaults(defaults_table)
    storage = _storage(root.table("storage"))
    polling = _polling(root.table("polling"))
    limits = _limits(root.table("limits"))
    keys = [_key(t) for t in root.tables("keys")]
    webhooks = tuple(_webhook(t) for t in root.tables("webhooks"))
    channels = tuple(_channel(t, providers) for t in root.tables("channels"))
    root.finish()
    _check_channel_set(channels, defaults, "model" in defaults_table.data, problems)
    _check_keys(keys, problems)
    if problems.items:
        raise ConfigError(problems.items)
    return Config(
        server=server,
        defaults=defaults,
        storage=storage,
        polling=polling,
        limits=limits,
        keys=tuple(k for k in keys if k),
        webhooks=webhooks,
        channels=channels,
        source=source,
    )


def known_keys() -> set[str]:
    """Every key path the loader understands (tables as `server.port`, arrays as `channels[].name`).

    A channel's `options` is listed as one key: what goes inside depends on its provider (each
    provider class declares its own `options`). The documentation test compares this with
    config.example.toml.
    """
    paths: set[str] = set()
    recorder = Recorder(paths)
    _server(recorder.table("server"))
    _defaults(recorder.table("defaults"))
    _storage(recorder.table("storage"))
    _polling(recorder.table("polling"))
    _limits(recorder.table("limits"))
    _key(recorder.array_item("keys"))
    _webhook(recorder.array_item("webhooks"))
    _channel(recorder.array_item("channels"), REGISTRY)
    return paths


# --- sections -------------------------------------------------------------------------------


def _server(t: Table) -> ServerConfig:
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
        trust_proxy=t.boolean("trust_proxy", False),
        allow_private_networks=t.boolean("allow_private_networks", False),
    )
    t.finish()
    return server


def _defaults(t: Table) -> Defaults:
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


def _storage(t: Table) -> StorageConfig:
    storage = StorageConfig(
        keep_videos=t.boolean("keep_videos", True),
        keep_days=t.integer("keep_days", 30, minimum=0),
        max_gb=t.number("max_gb", 20, minimum=0),
    )
    t.finish()
    return storage


def _polling(t: Table) -> PollingConfig:
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


def _limits(t: Table) -> LimitsConfig:
    limits = LimitsConfig(requests_per_minute=t.integer("requests_per_minute", 120, minimum=0))
    t.finish()
    return limits


def _key(t: Table) -> StaticKey | None:
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


def _webhook(t: Table) -> Webhook:
    hook = Webhook(
        url=t.string("url", "", check=_http_url, nonempty=True),
        secret=t.string("secret", "", nonempty=True, secret=True),
    )
    t.finish()
    return hook


def _channel(t: Table, providers: ProviderClasses) -> ChannelConfig:
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
        for cred in ("api_key", "access_key", "secret_key"):
            if cred in cls.credentials and not creds[cred] and not isinstance(t, Recorder):
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


def _check_channel_set(
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


def _check_keys(keys: list[StaticKey | None], problems: Problems) -> None:
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
