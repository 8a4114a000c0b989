"""What a loaded config holds: frozen dataclasses, handed around as they are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    data_dir: Path = Path("./data")
    max_upload_mb: float = 10
    max_media_mb: float = 20  # a reference video or audio sent as a data: URL
    trust_proxy: bool = False
    allow_private_networks: bool = False
    log_level: str = "info"  # $RELAY_LOG_LEVEL wins
    log_format: str = "text"  # or "json"
    metrics_loopback: bool = False  # /metrics answers loopback clients without a key

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_media_bytes(self) -> int:
        return int(self.max_media_mb * 1024 * 1024)


@dataclass(frozen=True)
class Defaults:
    model: str = "sora-2"
    seconds: str = "4"
    size: str = "720x1280"


@dataclass(frozen=True)
class StoreConfig:
    url: str = "sqlite:///./data/relay.db"  # data_dir/relay.db unless set
    pool_size: int = 10  # PostgreSQL connections per instance


@dataclass(frozen=True)
class DashboardConfig:
    enabled: bool = True
    session_hours: float = 168


@dataclass(frozen=True)
class S3Config:
    endpoint: str
    bucket: str
    region: str = "auto"
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    path_style: bool = False


@dataclass(frozen=True)
class StorageConfig:
    keep_videos: bool = True
    keep_days: int = 30
    max_gb: float = 20
    backend: str = "local"  # or "s3"
    s3: S3Config | None = None


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
    store: StoreConfig = StoreConfig()
    dashboard: DashboardConfig = DashboardConfig()
    defaults: Defaults = Defaults()
    storage: StorageConfig = StorageConfig()
    polling: PollingConfig = PollingConfig()
    limits: LimitsConfig = LimitsConfig()
    keys: tuple[StaticKey, ...] = ()
    webhooks: tuple[Webhook, ...] = ()
    channels: tuple[ChannelConfig, ...] = ()
    source: str = "embedded defaults"


# What `relay serve` runs on when no config file exists: loopback, ./data, one demo channel.
