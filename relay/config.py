"""Load the config file: parse TOML -> expand ${ENV} -> validate into frozen dataclasses.

Validation happens once, here. Every problem names its key path and the bad value
(`channels[2].base_url: not an http(s) URL (got 'htp://x')`), unknown keys are errors, and all
problems of a file are reported together so `relay check-config` shows them in one run.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from relay.errors import ConfigError

T = TypeVar("T")

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
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
    secret: str


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    provider: str
    models: tuple[str, ...]
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    model_map: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    weight: int = 1
    max_in_flight: int = 0  # 0 = no limit
    timeout_s: float = 30
    enabled: bool = True
    options: Mapping[str, Any] = field(default_factory=dict)

    def upstream_model(self, public: str) -> str:
        return self.model_map.get(public, public)


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


def load(path: Path | None, env: Mapping[str, str] | None = None) -> Config:
    """Load and validate a config file, or the embedded defaults when `path` is None."""
    if path is None:
        return parse(EMBEDDED_DEFAULTS, env=env, source="embedded defaults")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: not valid TOML ({exc})"]) from None
    return parse(raw, env=env, source=str(path))


def parse(raw: Mapping[str, Any], *, env: Mapping[str, str] | None = None, source: str) -> Config:
    problems: list[str] = []
    expanded = _expand(raw, os.environ if env is None else env, "", problems)
    root = _Table(expanded, "", problems)
    server = _server(root.table("server"))
    defaults = _defaults(root.table("defaults"))
    storage = _storage(root.table("storage"))
    polling = _polling(root.table("polling"))
    limits_table = root.table("limits")
    limits = LimitsConfig(
        requests_per_minute=limits_table.integer("requests_per_minute", 120, minimum=0)
    )
    limits_table.finish()
    keys = tuple(k for k in (_key(t) for t in root.tables("keys")) if k)
    webhooks = tuple(_webhook(t) for t in root.tables("webhooks"))
    channels = tuple(c for c in (_channel(t) for t in root.tables("channels")) if c)
    root.finish()
    _check_channel_set(channels, defaults, keys, problems)
    if problems:
        raise ConfigError(problems)
    return Config(
        server=server,
        defaults=defaults,
        storage=storage,
        polling=polling,
        limits=limits,
        keys=keys,
        webhooks=webhooks,
        channels=channels,
        source=source,
    )


def known_keys() -> set[str]:
    """Every key path the loader understands (tables as `server.port`, arrays as `channels[].name`).

    The documentation test compares this with config.example.toml.
    """
    paths: set[str] = set()
    recorder = _Recorder(paths)
    _server(recorder.table("server"))
    _defaults(recorder.table("defaults"))
    _storage(recorder.table("storage"))
    _polling(recorder.table("polling"))
    recorder.table("limits").integer("requests_per_minute", 0)
    for section, reader in (("keys", _key), ("webhooks", _webhook), ("channels", _channel)):
        reader(recorder.array_item(section))
    return paths


# --- sections -------------------------------------------------------------------------------


def _server(t: _Table) -> ServerConfig:
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
        data_dir=Path(t.string("data_dir", "./data", nonempty=True)),
        max_upload_mb=t.number("max_upload_mb", 10, minimum=0.001, maximum=1024),
        trust_proxy=t.boolean("trust_proxy", False),
        allow_private_networks=t.boolean("allow_private_networks", False),
    )
    t.finish()
    return server


def _defaults(t: _Table) -> Defaults:
    seconds = t.get("seconds", "4")
    if isinstance(seconds, int) and not isinstance(seconds, bool):
        seconds = str(seconds)
    if not (isinstance(seconds, str) and seconds.isdigit() and int(seconds) > 0):
        t.problem("seconds", 'a positive whole number of seconds, like "4"', seconds)
        seconds = "4"
    defaults = Defaults(
        model=t.string("model", "sora-2", nonempty=True),
        seconds=str(int(seconds)),
        size=t.string("size", "720x1280", check=_size),
    )
    t.finish()
    return defaults


def _storage(t: _Table) -> StorageConfig:
    storage = StorageConfig(
        keep_videos=t.boolean("keep_videos", True),
        keep_days=t.integer("keep_days", 30, minimum=0),
        max_gb=t.number("max_gb", 20, minimum=0),
    )
    t.finish()
    return storage


def _polling(t: _Table) -> PollingConfig:
    interval = t.number("interval_s", 5, minimum=0.01)
    polling = PollingConfig(
        interval_s=interval,
        max_interval_s=t.number("max_interval_s", max(60.0, interval), minimum=interval),
        timeout_h=t.number("timeout_h", 24, minimum=0.001),
        concurrency=t.integer("concurrency", 16, minimum=1, maximum=1024),
    )
    t.finish()
    return polling


def _key(t: _Table) -> StaticKey | None:
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
            t.problem(
                "key",
                f"at least {MIN_KEY_LENGTH} characters (try `relay keys create`)",
                f"{len(key)} characters",
            )
            return None
        import hashlib

        digest = hashlib.sha256(key.encode()).hexdigest()
    elif not _SHA256.match(digest):
        t.problem("key_sha256", "64 hex digits", digest)
        return None
    return StaticKey(name=name, sha256=digest.lower(), user=user, role=role)


def _webhook(t: _Table) -> Webhook:
    hook = Webhook(
        url=t.string("url", "", check=_http_url, nonempty=True),
        secret=t.string("secret", "", nonempty=True, secret=True),
    )
    t.finish()
    return hook


def _channel(t: _Table) -> ChannelConfig | None:
    from relay.providers import REGISTRY  # the registry imports adapters; load it lazily

    name = t.string("name", "", check=_name, nonempty=True)
    provider = t.string("provider", "", nonempty=True)
    cls = REGISTRY.get(provider)
    if provider and cls is None and not isinstance(t, _Recorder):
        t.problem("provider", f"one of {', '.join(sorted(REGISTRY))}", provider)
    base_url = t.string("base_url", "", check=_http_url) or None
    creds = {
        k: t.string(k, "", secret=True) or None for k in ("api_key", "access_key", "secret_key")
    }
    models = t.string_list("models", nonempty=True)
    model_map = t.string_map("model_map")
    for public in model_map:
        if public not in models:
            t.problem(f"model_map.{public}", "a model listed in models", public)
    channel_options = t.table("options")
    options: dict[str, Any] = {}
    if cls is not None:
        for key, spec in cls.options.items():
            options[key] = channel_options.option(key, spec)
        for cred in ("api_key", "access_key", "secret_key"):
            if cred in cls.credentials and not creds[cred] and not isinstance(t, _Recorder):
                t.problem(cred, f"required by provider {provider!r}", None)
        if base_url is None and cls.default_base_url is None and cls.needs_network:
            t.problem("base_url", f"required by provider {provider!r}", None)
    channel_options.finish(hint=f"options of provider {provider!r}")
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
    return channel if name and cls is not None else None


def _check_channel_set(
    channels: tuple[ChannelConfig, ...],
    defaults: Defaults,
    keys: tuple[StaticKey, ...],
    problems: list[str],
) -> None:
    seen: set[str] = set()
    for i, channel in enumerate(channels):
        if channel.name in seen:
            problems.append(
                f"channels[{i}].name: already used by another channel ({channel.name!r})"
            )
        seen.add(channel.name)
    if not problems and not channels:
        problems.append(
            "channels: at least one channel is required (the demo channel needs no account: "
            'name = "demo", provider = "demo", models = ["sora-2"])'
        )
    served = {m for c in channels for m in c.models}
    if channels and defaults.model not in served:
        problems.append(
            f"defaults.model: no channel serves this model (got {defaults.model!r}; "
            f"served: {', '.join(sorted(served))})"
        )
    names: set[str] = set()
    for i, key in enumerate(keys):
        if key.name in names:
            problems.append(f"keys[{i}].name: already used by another key ({key.name!r})")
        names.add(key.name)


# --- checks used by several keys --------------------------------------------------------------


def _http_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL"
    return None


def _size(value: str) -> str | None:
    if _SIZE.match(value) or _RATIO.match(value):
        return None
    return 'a size like "1280x720" or a ratio like "16:9"'


def _name(value: str) -> str | None:
    if _NAME.match(value):
        return None
    return "letters, digits, '_', '.', '-' (at most 64)"


# --- ${ENV} expansion ---------------------------------------------------------------------------


def _expand(value: Any, env: Mapping[str, str], path: str, problems: list[str]) -> Any:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                problems.append(f"{path}: environment variable {name} is not set")
                return ""
            return env[name]

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, env, _join(path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- a small typed reader over one TOML table -----------------------------------------------


class _Table:
    """Reads typed values out of one table, recording problems with their key path."""

    def __init__(self, data: Any, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        self.used: set[str] = set()
        if data is None:
            data = {}
        if not isinstance(data, dict):
            problems.append(f"{path}: a table (got {_show(data)})")
            data = {}
        self.data: dict[str, Any] = data

    def problem(self, key: str, expected: str, got: Any, *, secret: bool = False) -> None:
        shown = "" if got is None else f" (got {'<hidden>' if secret else _show(got)})"
        self.problems.append(f"{_join(self.path, key)}: {expected}{shown}")

    def get(self, key: str, default: Any) -> Any:
        self.used.add(key)
        return self.data.get(key, default)

    def _typed(
        self, key: str, default: T, accept: Callable[[Any], bool], expected: str, secret: bool
    ) -> T:
        value = self.get(key, default)
        if value is default or accept(value):
            return value  # type: ignore[no-any-return]
        self.problem(key, expected, value, secret=secret)
        return default

    def string(
        self,
        key: str,
        default: str,
        *,
        check: Callable[[str], str | None] | None = None,
        nonempty: bool = False,
        secret: bool = False,
    ) -> str:
        value = self._typed(key, default, lambda v: isinstance(v, str), "a string", secret)
        if nonempty and not value:
            self.problem(key, "required (a non-empty string)", None)
            return default
        if value and check and (why := check(value)):
            self.problem(key, why, value, secret=secret)
            return default
        return value

    def integer(
        self, key: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self._typed(
            key,
            default,
            lambda v: isinstance(v, int) and not isinstance(v, bool),
            "a whole number",
            False,
        )
        return int(self._bounded(key, value, default, minimum, maximum))

    def number(
        self,
        key: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        value = self._typed(
            key,
            default,
            lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "a number",
            False,
        )
        return float(self._bounded(key, value, default, minimum, maximum))

    def _bounded(self, key: str, value: Any, default: Any, lo: Any, hi: Any) -> Any:
        if lo is not None and value < lo:
            self.problem(key, f"at least {lo}", value)
            return default
        if hi is not None and value > hi:
            self.problem(key, f"at most {hi}", value)
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        return self._typed(key, default, lambda v: isinstance(v, bool), "true or false", False)

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(key, default)
        if value not in choices:
            self.problem(key, f"one of {', '.join(choices)}", value)
            return default
        return value

    def string_list(self, key: str, *, nonempty: bool = False) -> list[str]:
        value = self.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem(key, "a list of non-empty strings", value)
            return []
        if nonempty and not value:
            self.problem(key, "required (at least one entry)", None)
        return value

    def string_map(self, key: str) -> dict[str, str]:
        value = self.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
            self.problem(key, "a table of strings", value)
            return {}
        return dict(value)

    def option(self, key: str, spec: Any) -> Any:
        """One provider option, read by its declared `Option` spec (see providers/base.py)."""
        value = self.get(key, spec.default)
        why = spec.check(value)
        if why:
            self.problem(key, why, value)
            return spec.default
        return value

    def table(self, key: str) -> _Table:
        return _Table(self.get(key, {}), _join(self.path, key), self.problems)

    def tables(self, key: str) -> list[_Table]:
        value = self.get(key, [])
        if not isinstance(value, list):
            self.problem(key, "an array of tables ([[" + key + "]])", value)
            return []
        return [
            _Table(v, f"{_join(self.path, key)}[{i}]", self.problems) for i, v in enumerate(value)
        ]

    def finish(self, hint: str = "") -> None:
        for key in self.data:
            if key not in self.used:
                where = f" ({hint})" if hint else ""
                self.problems.append(f"{_join(self.path, key)}: unknown key{where}")


class _Recorder(_Table):
    """A reader over nothing that records each key path asked for (for known_keys())."""

    def __init__(self, paths: set[str], path: str = "") -> None:
        super().__init__({}, path, [])
        self.paths = paths

    def get(self, key: str, default: Any) -> Any:
        self.paths.add(_join(self.path, key))
        return default

    def table(self, key: str) -> _Table:
        return _Recorder(self.paths, _join(self.path, key))

    def array_item(self, key: str) -> _Recorder:
        return _Recorder(self.paths, f"{key}[]")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
