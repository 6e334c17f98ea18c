"""Settings from RETURNFLOW_* variables (SPEC section 6), each overridable by a CLI flag."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from domain.policy import PolicyError, ReturnPolicy
from projections.commerce_bodies import Flavour, flavour_choice
from projections.positions import side_database

ROLES = ("all", "validation")


def data_home(env: Mapping[str, str] | None = None) -> Path:
    """Where the default store lives: RETURNFLOW_HOME, else `$XDG_DATA_HOME/returnflow`, else
    `~/.local/share/returnflow`. Never the working directory, so every command (from any
    directory) finds the store `serve` writes."""
    env = os.environ if env is None else env
    if env.get("RETURNFLOW_HOME", "").strip():
        return Path(env["RETURNFLOW_HOME"].strip()).expanduser()
    xdg = env.get("XDG_DATA_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "returnflow"


def default_store(env: Mapping[str, str] | None = None) -> str:
    return f"sqlite:///{data_home(env) / 'returnflow.db'}"


class ConfigError(ValueError):
    """A setting the service must not start with."""


@dataclass(frozen=True)
class Settings:
    store: str = field(default_factory=default_store)
    kafka_bootstrap: str | None = None
    commerce_url: str | None = None
    commerce_app_key: str | None = field(default=None, repr=False)
    commerce_dry_run: bool = False
    """RETURNFLOW_COMMERCE_DRY_RUN / --dry-run: without RETURNFLOW_COMMERCE_URL, only log the
    Commerce calls. Explicit, so an unset URL in a deployment refuses to start instead."""
    commerce_flavour: str = "classic"
    """updateReturnRequest bodies: `classic` (the seed's) or `op` (newer releases' operations)."""
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    webhook_basic_auth: tuple[str, ...] = field(default=(), repr=False)
    """`user:password` pairs: Commerce's alternative to signing (RETURNFLOW_WEBHOOK_BASIC_AUTH)."""
    api_token: str | None = field(default=None, repr=False)
    policy_path: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 2 * 1024 * 1024
    log_format: str = "auto"
    relay_inline: bool = True
    """With Kafka: run the relay inside `serve` (False when `returnflow relay` runs apart)."""
    projections: str | None = None
    """Where read models, positions, the sync ledger and the Commerce call log live
    (RETURNFLOW_PROJECTIONS): a SQLite file or a postgresql:// URL; default beside a SQLite
    store, and in the store's own database (tables `rf_*`) with PostgreSQL."""
    role: str = "all"
    """`validation`: serve only the Return Request Validation webhook, beside an `all` process
    on the same store, so Commerce's synchronous question never queues behind ingest."""
    workers: int | None = None
    """RETURNFLOW_WORKERS: processes `serve` answers with on one port; unset: one per core on a
    PostgreSQL store, one on SQLite (its single writer lock gains nothing from more) and on
    `memory:` (which no two processes can share)."""
    worker: int = 0
    """Which of them this is; worker 0 runs the single-process duties (read models, embedded
    sync or relay)."""
    session_seed: bytes | None = field(default=None, repr=False)
    """Development mode with several workers: the console's cookie key they share."""
    metrics_dir: str | None = None
    """Where the workers of one `serve` leave their metrics for each other (the supervisor's)."""
    cache_entries: int = 4096
    """RETURNFLOW_CACHE_ENTRIES: the bound of the writer's aggregate cache and of the remembered
    validation answers; each notification-log follower keeps a quarter of it. A miss reads the
    store, so the setting trades memory (about 7 KB per cached order) for reads, never results."""

    reconcile_rate: float = 20.0
    """RETURNFLOW_RECONCILE_RATE: GETs a second `reconcile` sends Commerce at most (0: no limit)."""
    reconcile_interval_s: float = 0.0
    """RETURNFLOW_RECONCILE_INTERVAL: seconds between the reconciliations `sync` runs (0: none)."""
    reconcile_fix: bool = False
    """RETURNFLOW_RECONCILE_FIX: those periodic runs also re-drive the drift they find."""

    @property
    def worker_count(self) -> int:
        if self.workers is not None:
            return self.workers
        return (os.cpu_count() or 1) if self.store.startswith(("postgresql:", "postgres:")) else 1

    @property
    def follower_cache_entries(self) -> int:
        return max(1, self.cache_entries // 4)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(f"RETURNFLOW_{name}")
            return value.strip() if value and value.strip() else None

        secrets = tuple(s.strip() for s in (get("WEBHOOK_SECRETS") or "").split(",") if s.strip())
        try:
            port = int(get("PORT") or 8080)
            max_body = int(get("MAX_BODY_BYTES") or cls.max_body_bytes)
            cache_entries = int(get("CACHE_ENTRIES") or cls.cache_entries)
            workers = int(get("WORKERS") or 0) or None
            reconcile_rate = float(get("RECONCILE_RATE") or cls.reconcile_rate)
            reconcile_interval = float(get("RECONCILE_INTERVAL") or 0)
        except ValueError as exc:
            raise ConfigError(
                f"RETURNFLOW_PORT/MAX_BODY_BYTES/CACHE_ENTRIES/WORKERS/RECONCILE_*: {exc}"
            ) from None
        settings = cls(
            store=get("STORE") or default_store(env),
            commerce_dry_run=(get("COMMERCE_DRY_RUN") or "false").lower() in ("1", "true", "yes"),
            kafka_bootstrap=get("KAFKA_BOOTSTRAP"),
            commerce_url=get("COMMERCE_URL"),
            commerce_app_key=get("COMMERCE_APP_KEY"),
            commerce_flavour=(get("COMMERCE_FLAVOUR") or "classic").lower(),
            webhook_secrets=secrets,
            webhook_basic_auth=tuple(
                c.strip() for c in (get("WEBHOOK_BASIC_AUTH") or "").split(",") if c.strip()
            ),
            api_token=get("API_TOKEN"),
            policy_path=get("POLICY"),
            host=get("HOST") or "127.0.0.1",
            port=port,
            max_body_bytes=max_body,
            log_format=get("LOG_FORMAT") or "auto",
            relay_inline=(get("RELAY_INLINE") or "true").lower() not in ("0", "false", "no"),
            role=(get("ROLE") or "all").lower(),
            projections=get("PROJECTIONS"),
            cache_entries=cache_entries,
            workers=workers,
            reconcile_rate=reconcile_rate,
            reconcile_interval_s=reconcile_interval,
            reconcile_fix=(get("RECONCILE_FIX") or "false").lower() in ("1", "true", "yes"),
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given) if given else settings

    @property
    def projections_database(self) -> str:
        return self.projections or side_database(self.store)

    @property
    def flavour(self) -> Flavour:
        return flavour_choice(self.commerce_flavour)

    @property
    def embedded_sync(self) -> bool:
        """`serve` calls Commerce itself: no Kafka, and not the validation-only role."""
        return not self.kafka_bootstrap and self.role == "all"

    def require_commerce(self, who: str) -> None:
        """An unset Commerce URL must not quietly mean "log the calls" where it matters."""
        if not self.commerce_url and not self.commerce_dry_run:
            raise ConfigError(
                f"{who} needs RETURNFLOW_COMMERCE_URL (the Commerce Admin API base URL); to only log "
                "the calls it would make, say so: --dry-run or RETURNFLOW_COMMERCE_DRY_RUN=true"
            )

    @property
    def development_mode(self) -> bool:
        """Unsigned webhooks or an open API: only ever acceptable on loopback."""
        return not (self.webhook_secrets or self.webhook_basic_auth) or not self.api_token

    def check(self) -> None:
        if self.development_mode and not is_loopback(self.host):
            raise ConfigError(
                f"refusing to serve on {self.host} without RETURNFLOW_WEBHOOK_SECRETS (or "
                "RETURNFLOW_WEBHOOK_BASIC_AUTH) and RETURNFLOW_API_TOKEN: set both, or bind to "
                "127.0.0.1 for development"
            )
        if self.embedded_sync and not is_loopback(self.host):
            self.require_commerce("serve (its embedded sync)")
        if self.role not in ROLES:
            raise ConfigError(f"RETURNFLOW_ROLE must be one of {', '.join(ROLES)}, not {self.role!r}")
        try:
            flavour_choice(self.commerce_flavour)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.max_body_bytes < 1024:
            raise ConfigError("RETURNFLOW_MAX_BODY_BYTES must be at least 1024")
        if self.cache_entries < 1:
            raise ConfigError("RETURNFLOW_CACHE_ENTRIES must be at least 1")
        if self.worker_count < 1:
            raise ConfigError("RETURNFLOW_WORKERS must be at least 1")
        if self.worker_count > 1 and self.store.startswith("memory:"):
            raise ConfigError(
                "RETURNFLOW_WORKERS > 1 needs a store the workers can share "
                "(sqlite:/// or postgresql://), not memory:"
            )


@dataclass(frozen=True)
class KafkaNames:
    """SPEC names by default; overridable so several deployments (or tests) share a cluster."""

    events: str = "returnflow.events"
    dlq: str = "returnflow.commerce.dlq"
    group: str = "returnflow-commerce-sync"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaNames:
        env = os.environ if env is None else env
        return cls(
            events=env.get("RETURNFLOW_EVENTS_TOPIC") or cls.events,
            dlq=env.get("RETURNFLOW_DLQ_TOPIC") or cls.dlq,
            group=env.get("RETURNFLOW_SYNC_GROUP") or cls.group,
        )


def load_policy(path: str | None) -> ReturnPolicy:
    """The policy file named by RETURNFLOW_POLICY, else the documented defaults."""
    if path is None:
        return ReturnPolicy()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"RETURNFLOW_POLICY {path}: {exc.strerror}") from None
    try:
        return ReturnPolicy.from_toml_text(text)
    except PolicyError as exc:
        raise ConfigError(f"RETURNFLOW_POLICY {path}: {exc}") from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
