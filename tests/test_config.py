"""The config loader against spec/config.md: every key's default, a good value, a bad type and a
bad value; ${ENV} expansion; unknown keys at every level; credentials per provider; secrets never
shown; the lookup order; `relay check-config`."""

from __future__ import annotations

import copy
import functools
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from relay import cli
from relay import config as config_mod
from relay.config import (
    EMBEDDED_DEFAULTS,
    ChannelConfig,
    Config,
    Webhook,
    find_config_path,
    known_keys,
)
from relay.errors import ConfigError
from relay.providers import REGISTRY
from relay.providers.base import NoOptions, Provider, option
from relay.routing import upstream_model

KEY = "sk-home-0123456789abcdef"
WEBHOOK_SECRET = "whsec_0123456789abcdef"
SECRET = "sk-SUPER-SECRET-do-not-print-0123"


def base() -> dict[str, Any]:
    """A valid config with one of every array, so each key has somewhere to go."""
    return {
        "keys": [{"name": "home", "key": KEY, "user": "alice"}],
        "webhooks": [{"url": "https://example.org/hooks/video", "secret": WEBHOOK_SECRET}],
        "channels": [{"name": "demo", "provider": "demo", "models": ["sora-2", "demo"]}],
    }


def problems_of(raw: dict[str, Any], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(raw, env={} if env is None else env, source="test")
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def put(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set `a.b[0].c` in a raw config (creating tables on the way); returns the raw config."""
    parts: list[Any] = [
        int(p[1:-1]) if p.startswith("[") else p for p in re.findall(r"[^.\[\]]+|\[\d+\]", path)
    ]
    node: Any = raw
    for part in parts[:-1]:
        if isinstance(part, str) and part not in node:
            node[part] = {}
        node = node[part]
    if value is _DROP:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    return raw


_DROP = object()


class PairProvider(Provider):
    """Needs an access key and a secret key, like Kling and Jimeng."""

    name = "pair"
    credentials = ("access_key", "secret_key")
    default_base_url = "https://pair.example"


@dataclass(frozen=True)
class KeyedOptions:
    auth: dict[str, Any] = option({}, "extra headers")
    hosts: list[Any] = option([], "mirrors")
    token: str = option("", "a second credential")
    mode: str = option("std", "quality", choices=("std", "pro"))


class KeyedProvider(Provider[KeyedOptions]):
    """Needs an api_key and a base_url; takes a few options of different kinds."""

    name = "keyed"
    credentials = ("api_key",)
    Options = KeyedOptions


class BareProvider(Provider[NoOptions]):
    name = "bare"
    credentials = ()
    default_base_url = "https://bare.example"


# The registry and this file's own providers, which every config of this file may name.
PROVIDERS = {**REGISTRY, **{cls.name: cls for cls in (PairProvider, KeyedProvider, BareProvider)}}
parse = functools.partial(config_mod.parse, providers=PROVIDERS)
load = functools.partial(config_mod.load, providers=PROVIDERS)


# --- every key: default, good value, bad type, bad value ------------------------------------------


class Key(NamedTuple):
    path: str
    default: Any
    good: Any
    bad_type: Any
    bad_value: Any = None  # None: the type is the only thing to get wrong
    says: str = ""  # the start of what the error says about bad_value
    parsed: Any = None  # how `good` comes out, when not as given


KEYS = [
    Key("server.host", "127.0.0.1", "0.0.0.0", 8080, "", "must not be empty"),
    Key("server.port", 8080, 9000, "8080", 70000, "at most 65535"),
    Key("server.public_url", "http://127.0.0.1:8080", "https://v.example.org/relay/", 1,
        "htp://x", "not an http(s) URL", parsed="https://v.example.org/relay"),
    Key("server.data_dir", Path("data"), "/var/lib/relay", 5, "", "must not be empty",
        parsed=Path("/var/lib/relay")),
    Key("server.max_upload_mb", 10, 2.5, "10", 0, "at least 0.001"),
    Key("server.max_media_mb", 20, 50, "20", 0, "at least 0.001"),
    Key("server.trust_proxy", False, True, "yes"),
    Key("server.allow_private_networks", False, True, 1),
    Key("server.log_level", "info", "debug", 1, "loud", "one of debug, info, warning, error"),
    Key("server.log_format", "text", "json", 1, "xml", "one of text, json"),
    Key("server.metrics_loopback", False, True, "yes"),
    Key("store.url", "sqlite:///data/relay.db", "postgresql://relay@db.internal/relay", 5,
        "mysql://x", "sqlite:///PATH or postgresql://"),
    Key("store.pool_size", 10, 20, "10", 0, "at least 1"),
    Key("dashboard.enabled", True, False, "no"),
    Key("dashboard.session_hours", 168, 24, "168", 0, "at least 0.01"),
    Key("defaults.model", "sora-2", "demo", 2, "kling-v9", "no channel serves this model"),
    Key("defaults.seconds", "4", "8", 4.5, "0", "a positive whole number of seconds"),
    Key("defaults.size", "720x1280", "16:9", 720, "720p", 'a size like "1280x720"'),
    Key("storage.keep_videos", True, False, "no"),
    Key("storage.keep_days", 30, 0, 1.5, -1, "at least 0"),
    Key("storage.max_gb", 20, 0.5, "20", -1, "at least 0"),
    Key("storage.backend", "local", "local", 1, "nfs", "one of local, s3"),
    Key("polling.interval_s", 5, 1, "5", 0, "at least 0.01"),
    Key("polling.max_interval_s", 60, 120, "60", 1, "at least interval_s (5)"),
    Key("polling.timeout_h", 24, 1.5, "24", 0, "at least 0.001"),
    Key("polling.concurrency", 16, 4, 4.0, 0, "at least 1"),
    Key("limits.requests_per_minute", 120, 0, "120", -5, "at least 0"),
    Key("keys[0].name", "home", "laptop", 3, "has space", "letters, digits"),
    Key("keys[0].user", "alice", "bob", ["bob"], "-bob", "letters, digits"),
    Key("keys[0].role", "user", "admin", 1, "root", "one of user, admin"),
    Key("webhooks[0].url", "https://example.org/hooks/video", "http://10.0.0.5/hook", 80,
        "ftp://example.org/hook", "not an http(s) URL"),
    Key("channels[0].name", "demo", "demo-2", 1, "-demo", "letters, digits"),
    Key("channels[0].provider", "demo", "demo", True, "nope", "one of "),
    Key("channels[0].base_url", None, "http://10.0.0.2:9000/v1/", 1, "htp://x",
        "not an http(s) URL", parsed="http://10.0.0.2:9000/v1"),
    Key("channels[0].models", ("sora-2", "demo"), ["sora-2"], "sora-2", ["sora-2", ""],
        "a list of non-empty strings", parsed=("sora-2",)),
    Key("channels[0].model_map", {}, {"sora-2": "demo-hd"}, ["sora-2"]),
    Key("channels[0].priority", 0, -3, "high"),
    Key("channels[0].weight", 1, 3, 1.5, 0, "at least 1"),
    Key("channels[0].max_in_flight", 0, 4, "4", -1, "at least 0"),
    Key("channels[0].timeout_s", 30, 5, "30", 4000, "at most 3600"),
    Key("channels[0].enabled", True, False, "false"),
    Key("channels[0].options.finish_after_s", 5, 0.5, "5", -1, "a number >= 0"),
]  # fmt: skip
IDS = [k.path for k in KEYS]
BAD_VALUES = [k for k in KEYS if k.bad_value is not None]


def read(config: Config, path: str) -> Any:
    """The parsed value at a key path: attributes of the dataclasses, items of mappings."""
    node: Any = config
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            node = node[int(part[1:-1])]
        elif isinstance(node, Mapping):
            node = node[part]
        else:
            node = getattr(node, part)
    return node


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_default(key: Key) -> None:
    assert read(parse(base(), env={}, source="test"), key.path) == key.default


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_good_value(key: Key) -> None:
    config = parse(put(base(), key.path, key.good), env={}, source="test")
    assert read(config, key.path) == (key.good if key.parsed is None else key.parsed)


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_bad_type(key: Key) -> None:
    problems = problems_of(put(base(), key.path, key.bad_type))
    mine = [p for p in problems if p.startswith(f"{key.path}: ")]
    assert len(mine) == 1, problems
    assert mine[0].endswith(f"(got {key.bad_type!r})"), problems


@pytest.mark.parametrize("key", BAD_VALUES, ids=[k.path for k in BAD_VALUES])
def test_bad_value(key: Key) -> None:
    problems = problems_of(put(base(), key.path, key.bad_value))
    mine = [p for p in problems if p.startswith(f"{key.path}: ")]
    assert len(mine) == 1, problems
    assert mine[0].startswith(f"{key.path}: {key.says}"), problems
    assert f"(got {key.bad_value!r}" in mine[0], problems


def test_every_key_of_the_contract_is_covered() -> None:
    covered = {k.path.replace("[0]", "[]") for k in KEYS} - {"channels[].options.finish_after_s"}
    secrets = {
        "keys[].key",
        "keys[].key_sha256",
        "webhooks[].secret",
        "channels[].api_key",
        "channels[].access_key",
        "channels[].secret_key",
        "channels[].options",
        *S3_KEYS,
    }  # tested on their own below
    assert covered | secrets == known_keys()


# --- keys that need more than one line ------------------------------------------------------------

S3_KEYS = {
    "storage.s3",
    "storage.s3.endpoint",
    "storage.s3.bucket",
    "storage.s3.region",
    "storage.s3.access_key",
    "storage.s3.secret_key",
    "storage.s3.path_style",
}


def test_s3_storage_needs_its_table_and_hides_its_secrets() -> None:
    raw = put(base(), "storage.backend", "s3")
    assert problems_of(raw) == [
        'storage.s3: required with backend = "s3": a table { endpoint, bucket, ... }'
    ]
    s3 = {
        "endpoint": "http://127.0.0.1:8333/",
        "bucket": "relay-videos",
        "access_key": "${S3_ACCESS_KEY}",
        "secret_key": SECRET,
        "path_style": True,
    }
    config = parse(put(raw, "storage.s3", s3), env={"S3_ACCESS_KEY": "AKIA-test"})
    got = config.storage.s3
    assert got is not None
    assert (got.endpoint, got.bucket, got.region, got.path_style) == (
        "http://127.0.0.1:8333",
        "relay-videos",
        "auto",
        True,
    )
    assert (got.access_key, got.secret_key) == ("AKIA-test", SECRET)
    assert SECRET not in repr(config)
    problems = problems_of(
        put(raw, "storage.s3", {**s3, "bucket": "", "secret_key": 5}), {"S3_ACCESS_KEY": "x"}
    )
    assert any(p.startswith("storage.s3.bucket: must not be empty") for p in problems)
    assert any(p.startswith("storage.s3.secret_key: a string") for p in problems)
    assert all(SECRET not in p for p in problems)


def test_the_default_store_is_sqlite_in_data_dir() -> None:
    config = parse(put(base(), "server.data_dir", "/var/lib/relay"), env={})
    assert config.store.url == "sqlite:////var/lib/relay/relay.db"


def test_public_url_follows_host_and_port_when_not_set() -> None:
    raw = put(put(base(), "server.host", "0.0.0.0"), "server.port", 9000)
    assert parse(raw, env={}).server.public_url == "http://127.0.0.1:9000"
    raw = put(base(), "server.host", "::1")
    assert parse(raw, env={}).server.public_url == "http://[::1]:8080"
    raw = put(base(), "server.host", "relay.lan")
    assert parse(raw, env={}).server.public_url == "http://relay.lan:8080"


def test_data_dir_expands_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = parse(put(base(), "server.data_dir", "~/relay"), env={})
    assert config.server.data_dir == tmp_path / "relay"
    assert config.server.max_upload_bytes == 10 * 1024 * 1024


@pytest.mark.parametrize("value", ["8", 8, "08"])
def test_defaults_seconds_is_a_whole_number_string(value: Any) -> None:
    assert parse(put(base(), "defaults.seconds", value), env={}).defaults.seconds == "8"


@pytest.mark.parametrize("value", ["four", "-4", "4.5", "", True, "\u0664"])
def test_defaults_seconds_rejects(value: Any) -> None:
    problems = problems_of(put(base(), "defaults.seconds", value))
    assert problems == [
        f'defaults.seconds: a positive whole number of seconds, like "4" (got {value!r})'
    ]


@pytest.mark.parametrize("value", ["1280x720", "1920x1080", "9:16", "1:1"])
def test_defaults_size_accepts(value: str) -> None:
    assert parse(put(base(), "defaults.size", value), env={}).defaults.size == value


@pytest.mark.parametrize("value", ["", "0x720", "0:9", "1280*720", "big"])
def test_defaults_size_rejects(value: str) -> None:
    problems = problems_of(put(base(), "defaults.size", value))
    assert len(problems) == 1 and problems[0].startswith("defaults.size: "), problems
    assert f"(got {value!r})" in problems[0]


def test_default_model_must_be_served() -> None:
    raw = put(base(), "channels[0].models", ["demo"])
    assert problems_of(raw) == [
        "defaults.model: no channel serves the default model 'sora-2'; set one of: demo"
    ]
    raw = put(raw, "defaults.model", "veo-3")
    assert problems_of(raw) == [
        "defaults.model: no channel serves this model (got 'veo-3'; served: demo)"
    ]


def test_model_map_names_only_listed_models() -> None:
    raw = put(base(), "channels[0].model_map", {"veo-3": "demo"})
    assert problems_of(raw) == [
        "channels[0].model_map.veo-3: a model listed in models (got 'veo-3')"
    ]
    config = parse(put(base(), "channels[0].model_map", {"sora-2": "demo-hd"}), env={})
    assert upstream_model(config.channels[0], "sora-2") == "demo-hd"
    assert upstream_model(config.channels[0], "demo") == "demo"


@pytest.mark.parametrize(
    "value",
    [1, "", {}, {"video": "x"}, {"text": ""}, {"text": 1}],
)
def test_model_map_entries(value: Any) -> None:
    problems = problems_of(put(base(), "channels[0].model_map", {"sora-2": value}))
    assert problems == [
        "channels[0].model_map.sora-2: an upstream model name, or a table of them by job shape "
        f"(text, image, frames, reference) (got {value!r})"
    ]


def test_model_map_by_job_shape() -> None:
    table = {"text": "t2v", "image": "i2v", "reference": "ref"}
    config = parse(put(base(), "channels[0].model_map", {"sora-2": table}), env={})
    channel = config.channels[0]
    assert upstream_model(channel, "sora-2") == "t2v"
    assert upstream_model(channel, "sora-2", "image") == "i2v"
    assert upstream_model(channel, "sora-2", "frames") == "i2v"  # falls back to image
    assert upstream_model(channel, "sora-2", "reference") == "ref"
    only_image = parse(put(base(), "channels[0].model_map", {"sora-2": {"image": "i2v"}}), env={})
    assert upstream_model(only_image.channels[0], "sora-2", "text") == "i2v"  # the one it has


def test_models_are_required() -> None:
    raw = put(base(), "channels[0].models", [])
    assert problems_of(raw) == ["channels[0].models: required (at least one entry)"]
    raw = put(base(), "channels[0].models", _DROP)
    assert problems_of(raw) == ["channels[0].models: required (at least one entry)"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("polling.timeout_h", float("inf")),
        ("server.max_upload_mb", float("nan")),
        ("channels[0].options.finish_after_s", float("nan")),
        ("channels[0].options.finish_after_s", float("inf")),
    ],
)
def test_non_finite_numbers_are_rejected(path: str, value: float) -> None:
    assert problems_of(put(base(), path, value)) == [f"{path}: a finite number (got {value!r})"]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("htp://x", "not an http(s) URL"),
        ("http://", "not an http(s) URL"),
        ("api.example.org", "not an http(s) URL"),
        ("http://api.example.org:http", "not an http(s) URL (bad port)"),
    ],
)
def test_base_url_must_be_http(url: str, why: str) -> None:
    raw = base()
    raw["channels"] += [{"name": n, "provider": "demo", "models": ["x"]} for n in "bc"]
    raw["channels"][2]["base_url"] = url
    assert problems_of(raw) == [f"channels[2].base_url: {why} (got {url!r})"]


def test_required_strings_say_required_when_missing() -> None:
    raw = put(base(), "channels[0].name", _DROP)
    raw = put(raw, "keys[0].user", _DROP)
    raw = put(raw, "webhooks[0].url", _DROP)
    assert set(problems_of(raw)) == {
        "channels[0].name: required (a non-empty string)",
        "keys[0].user: required (a non-empty string)",
        "webhooks[0].url: required (a non-empty string)",
    }


def test_tables_and_arrays_of_the_wrong_shape() -> None:
    raw = base()
    raw["server"] = 8080
    raw["channels"] = {"name": "demo", "provider": "demo"}
    assert problems_of(raw) == [
        "server: a table (got 8080)",
        "channels: an array of tables ([[channels]]) (got {'name': 'demo', 'provider': 'demo'})",
    ]
    raw = base()
    raw["channels"].append("kling")
    raw["channels"][0]["options"] = [5]
    assert problems_of(raw) == [
        "channels[1]: a table (got 'kling')",
        "channels[0].options: a table (got [5])",
    ]


# --- static keys and webhooks ---------------------------------------------------------------------


def test_static_key_is_kept_as_its_digest() -> None:
    config = parse(base(), env={})
    assert config.keys[0].sha256 == hashlib.sha256(KEY.encode()).hexdigest()
    assert KEY not in repr(config)


def test_static_key_by_digest() -> None:
    digest = hashlib.sha256(b"whatever-key-0123456789").hexdigest().upper()
    raw = put(put(base(), "keys[0].key", _DROP), "keys[0].key_sha256", digest)
    assert parse(raw, env={}).keys[0].sha256 == digest.lower()


def test_static_key_digest_must_be_hex() -> None:
    raw = put(put(base(), "keys[0].key", _DROP), "keys[0].key_sha256", "abc123")
    assert problems_of(raw) == ["keys[0].key_sha256: 64 hex digits (got 'abc123')"]
    raw = put(put(base(), "keys[0].key", _DROP), "keys[0].key_sha256", 5)
    assert "keys[0].key_sha256: a string (got 5)" in problems_of(raw)


@pytest.mark.parametrize("given", [{}, {"key": KEY, "key_sha256": "ab" * 32}])
def test_static_key_needs_exactly_one_form(given: dict[str, str]) -> None:
    raw = base()
    raw["keys"] = [{"name": "home", "user": "alice", **given}]
    assert problems_of(raw) == ["keys[0].key: exactly one of key or key_sha256 is required"]


def test_static_key_too_short_hides_the_key() -> None:
    problems = problems_of(put(base(), "keys[0].key", "sk-short"))
    assert problems == [
        "keys[0].key: at least 16 characters (try `relay keys create`) (got 8 characters)"
    ]


def test_static_keys_must_differ() -> None:
    raw = base()
    raw["keys"] += [
        {"name": "home", "key": "sk-other-0123456789abcdef", "user": "bob"},
        {"name": "tablet", "key": KEY, "user": "carol"},
    ]
    assert problems_of(raw) == [
        "keys[1].name: already used by keys[0] (got 'home')",
        "keys[2].key: the same key as keys[0]",
    ]


def test_webhook_secret_is_kept_but_not_shown() -> None:
    config = parse(base(), env={})
    assert config.webhooks == (
        Webhook(url="https://example.org/hooks/video", secret=WEBHOOK_SECRET),
    )
    assert WEBHOOK_SECRET not in repr(config)


def test_webhooks_and_keys_are_optional() -> None:
    raw = base()
    del raw["keys"], raw["webhooks"]
    config = parse(raw, env={})
    assert config.keys == () and config.webhooks == ()


# --- channels: providers, credentials, options ----------------------------------------------------


def test_channel_names_are_unique_and_indexed_as_written() -> None:
    raw = base()
    raw["channels"] = [
        {"name": "x", "provider": "nope", "models": ["sora-2"]},
        {"name": "demo", "provider": "demo", "models": ["sora-2"]},
        {"name": "demo", "provider": "demo", "models": ["demo"]},
    ]
    problems = problems_of(raw)
    assert problems[0].startswith("channels[0].provider: one of ")
    assert problems[0].endswith("(got 'nope')") and "demo" in problems[0]
    assert problems[1:] == ["channels[2].name: already used by channels[1] (got 'demo')"]


def test_at_least_one_channel() -> None:
    raw = base()
    del raw["channels"]
    (problem,) = problems_of(raw)
    assert problem.startswith("channels: at least one channel is required")
    raw["channels"] = []
    assert problems_of(raw) == [problem]


def test_credentials_required_per_provider() -> None:
    raw = base()
    raw["channels"] += [
        {"name": "kling", "provider": "pair", "models": ["kling-v2-1"]},
        {
            "name": "openai",
            "provider": "keyed",
            "models": ["sora-2-pro"],
            "base_url": "https://api.openai.com/v1",
        },
        {"name": "half", "provider": "pair", "models": ["x"], "access_key": "ak"},
    ]
    assert problems_of(raw) == [
        "channels[1].access_key: required by provider 'pair'",
        "channels[1].secret_key: required by provider 'pair'",
        "channels[2].api_key: required by provider 'keyed'",
        "channels[3].secret_key: required by provider 'pair'",
    ]


def test_credentials_given() -> None:
    raw = base()
    raw["channels"] += [
        {
            "name": "kling",
            "provider": "pair",
            "models": ["kling-v2-1"],
            "access_key": "AK123",
            "secret_key": "SK456",
        },
        {
            "name": "openai",
            "provider": "keyed",
            "models": ["sora-2-pro"],
            "base_url": "https://api.openai.com/v1",
            "api_key": "sk-abc",
        },
    ]
    config = parse(raw, env={})
    kling, openai = config.channels[1], config.channels[2]
    assert (kling.access_key, kling.secret_key, kling.api_key) == ("AK123", "SK456", None)
    assert kling.base_url is None  # the provider's default_base_url applies
    assert openai.api_key == "sk-abc"
    assert openai.options == {"auth": {}, "hosts": [], "token": "", "mode": "std"}
    for secret in ("AK123", "SK456", "sk-abc"):
        assert secret not in repr(config)


def test_base_url_required_without_a_provider_default() -> None:
    raw = base()
    raw["channels"].append(
        {"name": "openai", "provider": "keyed", "models": ["x"], "api_key": "sk-abc"}
    )
    assert problems_of(raw) == ["channels[1].base_url: required by provider 'keyed'"]


def test_provider_options_are_validated() -> None:
    raw = base()
    raw["channels"].append(
        {
            "name": "o",
            "provider": "keyed",
            "models": ["x"],
            "api_key": "sk-abc",
            "base_url": "https://o.example",
            "options": {"mode": "max", "hosts": "a"},
        }
    )
    assert problems_of(raw) == [
        "channels[1].options.hosts: a list (got 'a')",
        "channels[1].options.mode: one of 'std', 'pro' (got 'max')",
    ]


def test_options_of_a_provider_without_options() -> None:
    raw = base()
    raw["channels"].append(
        {"name": "b", "provider": "bare", "models": ["x"], "options": {"mode": "pro"}}
    )
    assert problems_of(raw) == [
        "channels[1].options.mode: unknown key (provider 'bare' takes no options)"
    ]


def test_options_of_an_unknown_provider_are_not_reported_twice() -> None:
    raw = put(base(), "channels[0].provider", "klingg")
    raw = put(raw, "channels[0].options", {"mode": "std"})
    (problem,) = problems_of(raw)
    assert problem.startswith("channels[0].provider: one of ")


# --- unknown keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "note"),
    [
        ("sever", " (did you mean server?)"),
        ("server.hots", " (did you mean host?)"),
        ("defaults.modle", " (did you mean model?)"),
        ("storage.keep_video", " (did you mean keep_videos?)"),
        ("polling.intervals", " (did you mean interval_s?)"),
        ("limits.requests_per_min", " (did you mean requests_per_minute?)"),
        ("limits.burst", ""),
        ("keys[0].usr", " (did you mean user?)"),
        ("webhooks[0].uri", " (did you mean url?)"),
        ("channels[0].apikey", " (did you mean api_key?)"),
        ("channels[0].options.finish_after", " (did you mean finish_after_s?)"),
        ("channels[0].options.mode", " (provider 'demo' accepts: finish_after_s)"),
    ],
)
def test_unknown_keys_at_every_level(path: str, note: str) -> None:
    assert problems_of(put(base(), path, "x")) == [f"{path}: unknown key{note}"]


def test_an_unknown_key_does_not_show_its_value() -> None:
    problems = problems_of(put(base(), "channels[0].apikey", SECRET))
    assert SECRET not in "\n".join(problems)


# --- all problems at once -------------------------------------------------------------------------


def test_all_problems_are_reported_together() -> None:
    raw = base()
    raw["server"] = {"port": "80", "colour": "blue"}
    raw["polling"] = {"interval_s": -1}
    raw["keys"][0]["role"] = "root"
    raw["channels"].append(
        {"name": "two", "provider": "demo", "models": ["x"], "base_url": "htp://x"}
    )
    with pytest.raises(ConfigError) as info:
        parse(raw, env={}, source="test")
    assert info.value.problems == [
        "server.port: a whole number (got '80')",
        "server.colour: unknown key",
        "polling.interval_s: at least 0.01 (got -1)",
        "keys[0].role: one of user, admin (got 'root')",
        "channels[1].base_url: not an http(s) URL (got 'htp://x')",
    ]


def test_long_values_are_shortened() -> None:
    (problem,) = problems_of(put(base(), "server.public_url", "ftp://" + "x" * 200))
    assert problem.endswith("...)") and len(problem) < 140


# --- secrets --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mistake",
    [
        lambda raw: put(raw, "keys", [SECRET]),
        lambda raw: put(raw, "keys", {"name": "home", "key": SECRET, "user": "alice"}),
        lambda raw: put(raw, "keys[0].key", [SECRET]),
        lambda raw: put(raw, "keys[0]", SECRET),
        lambda raw: put(raw, "webhooks[0].secret", [SECRET]),
        lambda raw: put(raw, "webhooks", {"url": "x", "secret": SECRET}),
        lambda raw: put(raw, "channels[0].api_key", {"value": SECRET}),
        lambda raw: put(raw, "channels[0].access_key", [SECRET]),
        lambda raw: put(raw, "channels[0].secret_key", [SECRET]),
        lambda raw: put(
            raw,
            "channels",
            [
                {
                    "name": "k",
                    "provider": "keyed",
                    "models": ["x"],
                    "api_key": SECRET,
                    "options": {"token": [SECRET]},
                }
            ],
        ),
        lambda raw: put(raw, "channels[0].options", [{"api_key": SECRET}]),
        lambda raw: put(raw, "channels", {"name": "k", "secret_key": SECRET}),
    ],
)
def test_secrets_are_never_shown(mistake: Callable[[dict[str, Any]], Any]) -> None:
    raw = base()
    mistake(raw)
    problems = problems_of(raw)
    text = "\n".join(problems)
    assert SECRET not in text
    assert "<hidden>" in text, problems


def test_a_secret_of_the_wrong_type_names_its_path() -> None:
    raw = put(base(), "channels[0].api_key", 12345)
    assert problems_of(raw) == ["channels[0].api_key: a string (got <hidden>)"]


# --- ${ENV} ---------------------------------------------------------------------------------------


def test_env_expansion_everywhere() -> None:
    raw = base()
    raw["server"] = {"public_url": "https://${HOST}/relay"}
    raw["keys"][0]["key"] = "${RELAY_KEY}"
    raw["webhooks"][0]["secret"] = "${HOOK_SECRET}"
    raw["channels"].append(
        {
            "name": "o",
            "provider": "keyed",
            "base_url": "https://${HOST}/v1",
            "api_key": "${OPENAI_API_KEY}",
            "models": ["sora-2-pro", "${EXTRA_MODEL}"],
            "options": {
                "auth": {"headers": {"X-Token": "Bearer ${TOKEN}"}, "list": ["${A}-${B}"]},
                "hosts": ["https://${HOST}", {"key": "${TOKEN}"}],
                "token": "${TOKEN}",
            },
        }
    )
    env = {
        "HOST": "videos.example.org",
        "RELAY_KEY": KEY,
        "HOOK_SECRET": "whsec_x",
        "OPENAI_API_KEY": "sk-openai",
        "EXTRA_MODEL": "sora-2",
        "TOKEN": "t0k",
        "A": "1",
        "B": "2",
    }
    config = parse(raw, env=env)
    assert config.server.public_url == "https://videos.example.org/relay"
    assert config.keys[0].sha256 == hashlib.sha256(KEY.encode()).hexdigest()
    assert config.webhooks[0].secret == "whsec_x"
    channel = config.channels[1]
    assert channel.base_url == "https://videos.example.org/v1"
    assert channel.api_key == "sk-openai"
    assert channel.models == ("sora-2-pro", "sora-2")
    assert channel.options["auth"] == {"headers": {"X-Token": "Bearer t0k"}, "list": ["1-2"]}
    assert channel.options["hosts"] == ["https://videos.example.org", {"key": "t0k"}]
    assert channel.options["token"] == "t0k"


def test_missing_env_variables_are_errors_naming_the_path() -> None:
    raw = base()
    raw["keys"][0]["key"] = "${RELAY_KEY}"
    raw["channels"].append(
        {
            "name": "o",
            "provider": "keyed",
            "base_url": "https://api.openai.com/v1",
            "api_key": "${OPENAI_API_KEY}",
            "models": ["sora-2", "${EXTRA_MODEL}"],
            "options": {"auth": {"headers": {"X": "${TOKEN}"}}, "hosts": ["a", "${MIRROR}"]},
        }
    )
    # one line per missing variable, not a second one about the emptied value
    assert problems_of(raw, env={"TOKEN": "t"}) == [
        "keys[0].key: environment variable RELAY_KEY is not set",
        "channels[1].api_key: environment variable OPENAI_API_KEY is not set",
        "channels[1].models[1]: environment variable EXTRA_MODEL is not set",
        "channels[1].options.hosts[1]: environment variable MIRROR is not set",
    ]


def test_an_empty_variable_is_set() -> None:
    raw = put(base(), "server.public_url", "${URL}")
    assert parse(raw, env={"URL": ""}).server.public_url == "http://127.0.0.1:8080"


def test_parse_uses_the_given_env_not_the_process_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_TEST_KEY", KEY)
    raw = put(base(), "keys[0].key", "${RELAY_TEST_KEY}")
    assert problems_of(raw, env={}) == [
        "keys[0].key: environment variable RELAY_TEST_KEY is not set"
    ]
    other = "sk-other-0123456789abcdef"
    given = parse(raw, env={"RELAY_TEST_KEY": other})
    assert given.keys[0].sha256 == hashlib.sha256(other.encode()).hexdigest()
    process = parse(raw)  # env=None: the process environment
    assert process.keys[0].sha256 == hashlib.sha256(KEY.encode()).hexdigest()


def test_only_braced_names_are_expanded() -> None:
    raw = put(base(), "server.public_url", "https://$HOST/${PATH_}")
    config = parse(raw, env={"HOST": "no", "PATH_": "p"})
    assert config.server.public_url == "https://$HOST/p"


# --- the embedded defaults, files and the lookup order --------------------------------------------


def test_embedded_defaults() -> None:
    before = copy.deepcopy(EMBEDDED_DEFAULTS)
    config = load(None, env={})
    assert before == EMBEDDED_DEFAULTS
    assert config.source == "embedded defaults"
    assert config.server.host == "127.0.0.1"
    assert config.server.public_url == "http://127.0.0.1:8080"
    assert config.server.data_dir == Path("./data")
    assert config.keys == () and config.webhooks == ()
    assert config.channels == (
        ChannelConfig(
            name="demo",
            provider="demo",
            models=("sora-2", "demo"),
            options={"finish_after_s": 5},
        ),
    )


def test_a_missing_field_means_its_default_for_the_whole_file() -> None:
    full = parse(base(), env={})
    assert full.server == Config().server
    assert full.defaults == Config().defaults
    assert full.storage == Config().storage
    assert full.polling == Config().polling
    assert full.limits == Config().limits


TOML = """\
[server]
port = 9090
data_dir = "/srv/relay"

[[keys]]
name = "home"
key = "${RELAY_KEY}"
user = "alice"
role = "admin"

[[channels]]
name = "demo"
provider = "demo"
models = ["sora-2", "demo"]
options = { finish_after_s = 2 }
"""


def test_load_a_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(TOML)
    config = load(path, env={"RELAY_KEY": KEY})
    assert config.source == str(path)
    assert config.server.port == 9090
    assert config.server.public_url == "http://127.0.0.1:9090"
    assert config.server.data_dir == Path("/srv/relay")
    assert config.keys[0].role == "admin"
    assert config.channels[0].options == {"finish_after_s": 2}


def test_load_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load(path, env={})
    assert info.value.problems == [f"{path}: no such file"]


def test_load_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, env={})
    (problem,) = info.value.problems
    assert problem.startswith(f"{tmp_path}: cannot read (")


@pytest.mark.parametrize(
    "text",
    ["[server]\nport = \n", "[server\nport = 1\n", 'a = "b"\na = "c"\n', "x = 'unterminated\n"],
)
def test_toml_syntax_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load(path, env={})
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: not valid TOML (")
    assert re.search(r"line \d+|end of document", problem), problem


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[server]\nhost = "\xff"\n')
    with pytest.raises(ConfigError) as info:
        load(path, env={})
    assert info.value.problems[0].startswith(f"{path}: not valid TOML (")


@pytest.fixture
def lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, no $RELAY_CONFIG, and no /etc/relay/config.toml."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RELAY_CONFIG", raising=False)
    etc = Path("/etc/relay/config.toml")
    real = Path.is_file
    monkeypatch.setattr(Path, "is_file", lambda p: False if p == etc else real(p))
    return tmp_path


def _etc_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    etc = Path("/etc/relay/config.toml")
    real = Path.is_file
    monkeypatch.setattr(Path, "is_file", lambda p: True if p == etc else real(p))


def test_lookup_order(lookup: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_config_path(None) is None
    _etc_exists(monkeypatch)
    assert find_config_path(None) == Path("/etc/relay/config.toml")
    (lookup / "config.toml").write_text(TOML)
    assert find_config_path(None) == Path("config.toml")
    monkeypatch.setenv("RELAY_CONFIG", "/opt/relay.toml")
    assert find_config_path(None) == Path("/opt/relay.toml")
    assert find_config_path("given.toml") == Path("given.toml")


def test_an_explicit_path_that_does_not_exist_is_an_error(lookup: Path) -> None:
    (lookup / "config.toml").write_text(TOML)
    path = find_config_path("missing.toml")
    assert path == Path("missing.toml")
    with pytest.raises(ConfigError, match=r"missing\.toml: no such file"):
        load(path, env={})


def test_relay_config_that_does_not_exist_is_an_error(
    lookup: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_CONFIG", str(lookup / "gone.toml"))
    with pytest.raises(ConfigError, match=r"gone\.toml: no such file"):
        load(find_config_path(None), env={})


def test_no_file_anywhere_runs_on_the_embedded_defaults(lookup: Path) -> None:
    config = load(find_config_path(None), env={})
    assert config.source == "embedded defaults"
    assert [c.name for c in config.channels] == ["demo"]


# --- relay check-config ---------------------------------------------------------------------------


def test_check_config_good(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_KEY", KEY)
    path = tmp_path / "config.toml"
    path.write_text(TOML)
    assert cli.main(["check-config", "--config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{path}: OK (1 channels, 1 static keys, models: demo, sora-2)")
    assert err == ""


def test_check_config_bad(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_KEY", KEY)
    path = tmp_path / "config.toml"
    path.write_text(
        TOML.replace("port = 9090", "port = 99999\nhots = 'x'")
        + '\n[[channels]]\nname = "two"\nprovider = "demo"\nmodels = ["x"]\nbase_url = "htp://x"\n'
    )
    assert cli.main(["check-config", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert str(path) in err
    for problem in (
        "server.port: at most 65535 (got 99999)",
        "server.hots: unknown key (did you mean host?)",
        "channels[1].base_url: not an http(s) URL (got 'htp://x')",
    ):
        assert problem in err


def test_check_config_missing_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELAY_KEY", raising=False)
    path = tmp_path / "config.toml"
    path.write_text(TOML)
    assert cli.main(["check-config", "--config", str(path)]) == 2
    assert "keys[0].key: environment variable RELAY_KEY is not set" in capsys.readouterr().err


def test_check_config_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[server\n")
    assert cli.main(["check-config", "--config", str(path)]) == 2
    assert f"{path}: not valid TOML" in capsys.readouterr().err


# --- known_keys -----------------------------------------------------------------------------------


def test_known_keys_lists_every_key_path() -> None:
    assert known_keys() == {
        "server.host",
        "server.port",
        "server.public_url",
        "server.data_dir",
        "server.max_upload_mb",
        "server.max_media_mb",
        "server.trust_proxy",
        "server.allow_private_networks",
        "server.log_level",
        "server.log_format",
        "server.metrics_loopback",
        "store.url",
        "store.pool_size",
        "dashboard.enabled",
        "dashboard.session_hours",
        "defaults.model",
        "defaults.seconds",
        "defaults.size",
        "storage.keep_videos",
        "storage.keep_days",
        "storage.max_gb",
        "storage.backend",
        *S3_KEYS,
        "polling.interval_s",
        "polling.max_interval_s",
        "polling.timeout_h",
        "polling.concurrency",
        "limits.requests_per_minute",
        "keys[].name",
        "keys[].key",
        "keys[].key_sha256",
        "keys[].user",
        "keys[].role",
        "webhooks[].url",
        "webhooks[].secret",
        "channels[].name",
        "channels[].provider",
        "channels[].base_url",
        "channels[].api_key",
        "channels[].access_key",
        "channels[].secret_key",
        "channels[].models",
        "channels[].model_map",
        "channels[].priority",
        "channels[].weight",
        "channels[].max_in_flight",
        "channels[].timeout_s",
        "channels[].enabled",
        "channels[].options",
    }


def test_every_known_key_is_accepted() -> None:
    """No key that known_keys() lists is refused as unknown: the two cannot drift apart."""
    for path in known_keys():
        raw = put(base(), path.replace("[]", "[0]"), object())  # a wrong type, not a wrong name
        with pytest.raises(ConfigError) as info:
            parse(raw, env={})
        assert not any("unknown key" in p for p in info.value.problems), info.value.problems
