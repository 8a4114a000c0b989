"""Load the config file: parse TOML -> expand ${ENV} -> validate into frozen dataclasses.

Validation happens once, here. Every problem names its key path and the bad value
(`channels[2].base_url: not an http(s) URL (got 'htp://x')`), unknown keys are errors, and all
problems of a file are reported together so `relay check-config` shows them in one run.

    types.py     what a loaded config holds (frozen dataclasses)
    sections.py  reading each section, and the checks across entries
    toml.py      a typed reader over parsed TOML: key paths, ${ENV}, unknown keys, secrets
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from relay.config import envfile, sections
from relay.config.sections import ProviderClasses, invalid_name
from relay.config.toml import Problems, Recorder, Table, expand
from relay.config.types import (
    ChannelConfig,
    Config,
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
from relay.errors import ConfigError
from relay.providers import REGISTRY

__all__ = [
    "EMBEDDED_DEFAULTS",
    "ChannelConfig",
    "Config",
    "DashboardConfig",
    "Defaults",
    "LimitsConfig",
    "PollingConfig",
    "S3Config",
    "ServerConfig",
    "StaticKey",
    "StorageConfig",
    "StoreConfig",
    "Webhook",
    "find_config_path",
    "invalid_name",
    "known_keys",
    "load",
    "parse",
]

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
    if env is None:
        env = envfile.environment(path)  # relay.env beside the file, as the service sees it
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
    server = sections.server(root.table("server"))
    store = sections.store(root.table("store"), server.data_dir)
    dashboard = sections.dashboard(root.table("dashboard"))
    defaults_table = root.table("defaults")
    defaults = sections.defaults(defaults_table)
    storage = sections.storage(root.table("storage"))
    polling = sections.polling(root.table("polling"))
    limits = sections.limits(root.table("limits"))
    keys = [sections.key(t) for t in root.tables("keys")]
    webhooks = tuple(sections.webhook(t) for t in root.tables("webhooks"))
    channels = tuple(sections.channel(t, providers) for t in root.tables("channels"))
    root.finish()
    sections.check_channel_set(channels, defaults, "model" in defaults_table.data, problems)
    sections.check_keys(keys, problems)
    if problems.items:
        raise ConfigError(problems.items)
    return Config(
        server=server,
        store=store,
        dashboard=dashboard,
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
    sections.server(recorder.table("server"))
    sections.store(recorder.table("store"), Path("."))
    sections.dashboard(recorder.table("dashboard"))
    storage = recorder.table("storage")
    sections.storage(storage)
    sections.s3(storage.table("s3"))
    sections.defaults(recorder.table("defaults"))
    sections.polling(recorder.table("polling"))
    sections.limits(recorder.table("limits"))
    sections.key(recorder.array_item("keys"))
    sections.webhook(recorder.array_item("webhooks"))
    sections.channel(recorder.array_item("channels"), REGISTRY)
    return paths
