"""Configuration: one YAML file validated at start into frozen typed models.

Every problem is reported at once, one per line, each naming the file and the key path
("config/x.yaml: followers[1].risk.max_leverage: must be greater than 0"). Money and ratios are
`Decimal`: YAML floats are read from their source text, so 0.1 stays exactly 0.1. Secrets never
live in the file: a key like `api_key`, `secret` or `token` holding a literal value is refused, and
credentials are referenced through environment variables or owner-only files (bot.config.secrets).

Key reference: docs/config.md.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from bot.config.loading import ConfigError as ConfigError  # re-exported: callers catch it from here
from bot.config.loading import inline_secrets, read_yaml, validation_problems
from bot.config.secrets import CredentialsRef, SecretRef, register_url_parts, resolve, resolve_token
from bot.config.values import (
    AccountId,
    Amount,
    Fraction,
    Leverage,
    NonNegative,
    Seconds,
    StopLossPct,
    TakeProfitPct,
    to_json_flag,
)
from bot.core.symbols import Listing, SymbolMap
from bot.core.types import Credentials
from bot.venues.base import VenueMode
from bot.venues.source_address import address_problem


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RequestBudgetConfig(_Model):
    """Request weight per source address (docs/config.md, "venues")."""

    weight_limit_1m: int | None = Field(default=None, gt=0)  # None: the venue's published limit
    background_share: float = Field(default=0.5, gt=0, le=1)  # of the limit, for background reads


class VenueConfig(_Model):
    exchange: str = "binanceusdm"
    mode: VenueMode
    rest_url: str | None = None  # sim only
    ws_url: str | None = None  # sim only
    options: dict[str, Any] = Field(default_factory=dict)  # merged into ccxt's options
    timeout_ms: int = Field(default=10_000, gt=0)
    request_budget: RequestBudgetConfig = RequestBudgetConfig()
    # Every connection to the venue leaves from this address of the host (None: the system's
    # choice), so the venue's per-address budget is this process's own (bot.venues.source_address).
    source_address: str | None = None

    @field_validator("source_address")
    @classmethod
    def _ip_address(cls, address: str | None) -> str | None:
        if address is None:
            return None
        try:
            return str(ipaddress.ip_address(address))
        except ValueError:
            raise ValueError(f"{address!r} is not an IP address") from None


class LeadConfig(_Model):
    id: AccountId
    venue: str
    credentials: CredentialsRef
    symbols: tuple[str, ...] | None = None  # None: what it holds or has traded


class RiskConfig(_Model):
    max_order_notional: Amount
    max_position_notional: Amount
    max_total_exposure: Amount
    max_leverage: Amount
    symbols_allow: tuple[str, ...] | None = None
    symbols_deny: tuple[str, ...] = ()
    slippage_bps: NonNegative | None = Decimal(50)  # None: market orders without a band
    portfolio_stop: Fraction | None = None
    daily_loss_limit: Amount | None = None
    max_drawdown: Fraction | None = None
    min_notional_policy: Literal["skip", "round_up"] = "skip"
    # Reduce-only TP / SL trigger orders resting at the venue for each copied position, in percent
    # of the follower's own average entry price (docs/config.md, "Take-profit and stop-loss").
    take_profit_pct: TakeProfitPct | None = None
    stop_loss_pct: StopLossPct | None = None


class SizingConfig(_Model):
    mode: Literal["equity_ratio", "multiplier", "fixed_notional", "allocation"]
    multiplier: Amount = Decimal(1)
    notional: Amount | None = None
    allocation: Amount | None = None


class FollowConfig(_Model):
    lead: str
    sizing: SizingConfig
    # What a follower gets of the lead's positions when it joins or leaves while the daemon runs
    # (docs/config.md, "Followers joining and leaving").
    on_join: Literal["copy_open", "new_only"] = "copy_open"
    join_max_adverse_bps: NonNegative | None = None  # copy_open: skip a position this far past its entry
    on_leave: Literal["close", "keep", "follow_exits"] = "keep"


class FollowerConfig(_Model):
    id: AccountId
    venue: str
    credentials: CredentialsRef
    leverage: Leverage = 5
    margin_mode: Literal["cross", "isolated"] = "cross"
    enabled: bool = True
    # Trades the account's owner makes by hand (docs/config.md, "Manual trades in a follower's
    # account"): leave them to him, adopt them into the copy, or leave them and alert.
    manual_trades: Literal["leave", "adopt", "alert"] = "leave"
    risk: RiskConfig
    follows: tuple[FollowConfig, ...] = Field(min_length=1)

    def sizing_for(self, lead_id: str) -> SizingConfig | None:
        return next((f.sizing for f in self.follows if f.lead == lead_id), None)


class FeedConfig(_Model):
    keepalive_s: Seconds = 20
    stale_after_s: Seconds = 60
    backoff_initial_s: Seconds = 0.5
    backoff_max_s: Seconds = 30
    backfill_limit: int = Field(default=1000, ge=1, le=1000)  # Binance's userTrades maximum
    # The public mark-price feed, one connection per venue (docs/architecture.md, "Mark prices").
    marks: bool = True
    marks_stale_after_s: Seconds = 10


class ExecutorConfig(_Model):
    order_timeout_ms: int = Field(default=5000, gt=0)
    lookup_attempts: int = Field(default=5, ge=1)
    # Sent with every order: past timestamp + recvWindow (+ margin) on the venue's clock, an order
    # that was not found never will be (docs/guarantees.md). Binance allows up to 60,000.
    recv_window_ms: int = Field(default=2000, gt=0, le=60_000)
    landing_margin_ms: int = Field(default=1000, ge=0)
    drain_timeout_s: Seconds = 10
    balance_refresh_s: Seconds = 30


class SupervisionConfig(_Model):
    """A follower's worker that fails this many batches within window_s is disabled (HALTED with
    code worker_failures); before that each failed batch is retried after a backoff that doubles
    from retry_backoff_s up to retry_backoff_max_s (docs/architecture.md, "Supervision")."""

    max_failures: int = Field(default=5, ge=1)
    window_s: Seconds = 60
    retry_backoff_s: Seconds = 0.2
    retry_backoff_max_s: Seconds = 5


class ReconcileConfig(_Model):
    mode: Literal["correct", "report"] = "correct"
    interval_s: Seconds = 30
    on_start: bool = True
    # Fees and funding of a follower (docs/pnl.md): its income log is read on a reconcile pass at
    # most this often (Binance weighs it 30; funding comes every 8 h), 0 = on every pass.
    income_every_s: float = Field(default=3600, ge=0)


class JournalConfig(_Model):
    path: str = "var/copybot.sqlite"


class ApiConfig(_Model):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=0, le=65535)
    token: SecretRef | None = None


class AumConfig(_Model):
    include_lead: bool = False
    cap: Amount | None = None
    max_slippage_bps: Amount | None = None


Severity = Literal["info", "warning", "critical"]


class NotifyTarget(_Model):
    """One apprise destination (Telegram, Discord, Slack, email, ntfy, ...): its URL carries the
    destination's token, so it is a secret like any other (`{env:}` or `{file:}`)."""

    url: SecretRef
    min_severity: Severity = "warning"


class AlertsConfig(_Model):
    webhook: SecretRef | None = None  # the generic JSON webhook (one POST per alert)
    notify: tuple[NotifyTarget, ...] = ()
    group_window_s: Seconds = 60  # alerts of one kind within this window are one message
    max_messages_per_hour: int = Field(default=30, ge=1)  # per destination; the rest is grouped
    daily_summary_utc: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # "HH:MM"


class LoggingConfig(_Model):
    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    json_: Annotated[bool | Literal["auto"], BeforeValidator(to_json_flag)] = Field(
        default="auto", alias="json"
    )

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @property
    def json_output(self) -> bool | None:
        """For configure_logging: None lets it decide by whether stdout is a terminal."""
        return None if self.json_ == "auto" else bool(self.json_)


_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")  # AccountId's pattern


class ClusterConfig(_Model):
    """Cluster mode (docs/cluster.md): lead feeds and follower shards share lead fills through Redis
    Streams. Absent, copybot is one process and never loads the Redis client."""

    redis_url: str = Field(min_length=1)  # redis://host:port/db, rediss:// (TLS) or unix:///path
    username: str | None = None  # a Redis ACL user; None: the default user
    password: SecretRef | None = None  # never in the URL
    id: AccountId  # this process's name in the cluster: lease holder, consumer name, shard id
    key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,32}$")] = "copybot"
    lease_ttl_s: Seconds = Field(default=5, ge=0.5)
    lease_renew_s: Seconds | None = None  # None: a third of lease_ttl_s
    stream_maxlen: int = Field(default=100_000, ge=100)
    claim_idle_s: Seconds = 10
    # The shard role (docs/cluster.md, "Assignment"): followers hash onto `partitions` fixed
    # partitions, spread over the shards whose heartbeat is younger than `heartbeat_ttl_s`.
    partitions: int = Field(default=16, ge=1, le=1024)
    heartbeat_s: Seconds = Field(default=1, ge=0.05)
    heartbeat_ttl_s: Seconds = Field(default=3, ge=0.2)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"must be a redis://, rediss:// or unix:// URL, got scheme {parts.scheme!r}")
        if parts.password is not None:
            raise ValueError("holds a password: put it in cluster.password ({env: NAME} or {file: path})")
        return url

    @property
    def renew_every_s(self) -> float:
        return self.lease_renew_s if self.lease_renew_s is not None else self.lease_ttl_s / 3


class ListingConfig(_Model):
    """One venue's listing of a mapped instrument (bot.core.symbols)."""

    symbol: str = Field(min_length=1)  # ccxt unified symbol on that venue, e.g. "1000PEPE/USDT:USDT"
    multiplier: Amount = Decimal(1)  # instrument units per one base unit of `symbol`


class AppConfig(_Model):
    venues: dict[str, VenueConfig] = Field(min_length=1)
    leads: tuple[LeadConfig, ...] = Field(min_length=1)
    followers: tuple[FollowerConfig, ...] = ()
    feed: FeedConfig = FeedConfig()
    executor: ExecutorConfig = ExecutorConfig()
    supervision: SupervisionConfig = SupervisionConfig()
    reconcile: ReconcileConfig = ReconcileConfig()
    journal: JournalConfig = JournalConfig()
    api: ApiConfig = ApiConfig()
    kill_switch_file: str | None = None
    aum: AumConfig = AumConfig()
    alerts: AlertsConfig = AlertsConfig()
    allow_withdrawal_keys: bool = False
    logging: LoggingConfig = LoggingConfig()
    cluster: ClusterConfig | None = None  # None: one process, no Redis
    # instrument -> config venue name -> listing, for instruments venues name differently
    symbol_map: dict[str, dict[str, ListingConfig]] = Field(default_factory=dict)

    _source: str = PrivateAttr(default="<dict>")
    _base_dir: Path | None = PrivateAttr(default=None)
    _env: Mapping[str, str] | None = PrivateAttr(default=None)
    # id -> account, built on first use: the hot path looks a follower's venue up per order.
    _index: dict[str, LeadConfig | FollowerConfig] | None = PrivateAttr(default=None)

    @property
    def source(self) -> str:
        return self._source

    @property
    def base_dir(self) -> Path | None:
        """The config file's folder: relative credential files are looked up there."""
        return self._base_dir

    def _by_id(self) -> dict[str, LeadConfig | FollowerConfig]:
        index = self._index
        if index is None or len(index) != len(self.leads) + len(self.followers):
            accounts: list[LeadConfig | FollowerConfig] = [*self.leads, *self.followers]
            index = self._index = {a.id: a for a in accounts}
        return index

    def lead(self, lead_id: str) -> LeadConfig:
        lead = self._by_id().get(lead_id)
        if not isinstance(lead, LeadConfig):
            raise KeyError(f"{self._source}: no lead with id {lead_id!r}")
        return lead

    def follower(self, follower_id: str) -> FollowerConfig:
        follower = self._by_id().get(follower_id)
        if not isinstance(follower, FollowerConfig):
            raise KeyError(f"{self._source}: no follower with id {follower_id!r}")
        return follower

    def _account(self, account_id: str) -> tuple[str, LeadConfig | FollowerConfig]:
        for group, accounts in (("leads", self.leads), ("followers", self.followers)):
            for account in accounts:
                if account.id == account_id:
                    return group, account
        raise KeyError(f"{self._source}: no lead or follower with id {account_id!r}")

    def venue_for(self, account_id: str) -> VenueConfig:
        return self.venues[self._account(account_id)[1].venue]

    def followers_of(self, lead_id: str, *, include_disabled: bool = False) -> tuple[FollowerConfig, ...]:
        return tuple(
            f
            for f in self.followers
            if (f.enabled or include_disabled) and any(link.lead == lead_id for link in f.follows)
        )

    def credentials_for(self, account_id: str) -> Credentials:
        """Resolve a lead's or follower's API credentials (raises bot.config.secrets.SecretError)."""
        group, account = self._account(account_id)
        where = f"{self._source}: {group}[{account_id}].credentials"
        return resolve(account.credentials, where=where, env=self._env, base_dir=self._base_dir)

    def symbols(self) -> SymbolMap:
        """The symbol map (validated at load: known venues, each listing in one instrument)."""
        return SymbolMap(
            {
                name: {venue: Listing(v.symbol, v.multiplier) for venue, v in listings.items()}
                for name, listings in self.symbol_map.items()
            }
        )

    def api_token(self) -> str | None:
        return self._token(self.api.token, "api.token")

    def webhook_url(self) -> str | None:
        return self._token(self.alerts.webhook, "alerts.webhook")

    def notify_urls(self) -> list[tuple[str, str]]:
        """(apprise URL, minimum severity) per destination; every part of each URL is a registered
        secret (bot.core.redaction), so no log line or error shows it."""
        targets: list[tuple[str, str]] = []
        for i, target in enumerate(self.alerts.notify):
            url = self._token(target.url, f"alerts.notify[{i}].url")
            assert url is not None
            register_url_parts(url)
            targets.append((url, target.min_severity))
        return targets

    def redis_password(self) -> str | None:
        return None if self.cluster is None else self._token(self.cluster.password, "cluster.password")

    def with_followers(self, followers: list[dict[str, Any]], source: str | None = None) -> AppConfig:
        """This config with another followers list, validated exactly as at start (ConfigError with
        each key path); the rest of the config, the environment and the base folder are kept."""
        data = self.model_dump(mode="json", by_alias=True)
        data["followers"] = followers
        config = parse_config(data, source or self._source, allow_embedded_sim=True, env=self._env)
        config._base_dir = self._base_dir
        return config

    def with_cluster_id(self, cluster_id: str) -> AppConfig:
        """A copy whose `cluster.id` is `cluster_id` (`copybot run --shard-id`: several processes
        sharing one config file); ValueError when it is not an id."""
        if self.cluster is None:
            raise ValueError("the config has no cluster section")
        if not _ID.fullmatch(cluster_id):
            raise ValueError(f"{cluster_id!r} is not an id (1-32 of letters, digits, _ and -)")
        return self.model_copy(update={"cluster": self.cluster.model_copy(update={"id": cluster_id})})

    def with_sim_urls(self, venue: str, rest_url: str, ws_url: str) -> AppConfig:
        """A copy with a sim venue pointed at a local exchange started by the caller (the demo)."""
        if venue not in self.venues or self.venues[venue].mode is not VenueMode.SIM:
            raise KeyError(f"{self._source}: no sim venue named {venue!r}")
        patched = self.venues[venue].model_copy(update={"rest_url": rest_url, "ws_url": ws_url})
        return self.model_copy(update={"venues": {**self.venues, venue: patched}})

    def _token(self, ref: SecretRef | None, key: str) -> str | None:
        if ref is None:
            return None
        return resolve_token(ref, where=f"{self._source}: {key}", env=self._env, base_dir=self._base_dir)


def load_config(
    path: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    allow_embedded_sim: bool = False,
) -> AppConfig:
    """Read and validate a config file. `env` (default os.environ) is the environment that
    credentials are later resolved from; `allow_embedded_sim` accepts sim venues without URLs
    (the demo starts its own local exchange and fills them in)."""
    data = read_yaml(path)
    config = parse_config(data, str(path), allow_embedded_sim=allow_embedded_sim, env=env)
    config._base_dir = Path(path).resolve().parent
    return config


def parse_config(
    data: dict[str, Any],
    source: str = "<dict>",
    *,
    allow_embedded_sim: bool = False,
    env: Mapping[str, str] | None = None,
) -> AppConfig:
    problems = list(inline_secrets(data))
    try:
        config = AppConfig.model_validate(data)
    except ValidationError as exc:
        problems.extend(validation_problems(data, exc, {p for p, _ in problems}))
        config = None
    if config is not None:
        problems.extend(_cross_checks(config, allow_embedded_sim=allow_embedded_sim))
    if problems:
        raise ConfigError(
            "\n".join(f"{source}: {p}: {msg}" if p else f"{source}: {msg}" for p, msg in problems)
        )
    if config is None:  # unreachable: a failed validation always adds a problem
        raise ConfigError(f"{source}: invalid config")
    config._source = source
    config._env = dict(os.environ) if env is None else env
    return config


# ---------------------------------------------------------------- checks


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _cross_checks(config: AppConfig, *, allow_embedded_sim: bool) -> Iterator[tuple[str, str]]:
    for name, venue in config.venues.items():
        if venue.mode is VenueMode.SIM:
            missing = [k for k in ("rest_url", "ws_url") if getattr(venue, k) is None]
            if missing and not allow_embedded_sim:
                yield f"venues.{name}", f"mode sim needs {' and '.join(missing)} (the local exchange's URLs)"
        else:
            for key in ("rest_url", "ws_url"):
                if getattr(venue, key) is not None:
                    yield f"venues.{name}.{key}", f"only used with mode: sim (this venue is {venue.mode})"
        if venue.source_address is not None:
            problem = address_problem(venue.source_address)
            if problem is not None:
                yield f"venues.{name}.source_address", problem
    seen: dict[str, str] = {}
    accounts: list[tuple[str, int, LeadConfig | FollowerConfig]]
    accounts = [("leads", i, a) for i, a in enumerate(config.leads)]
    accounts += [("followers", i, a) for i, a in enumerate(config.followers)]
    for group, i, account in accounts:
        where = f"{group}[{i}]"
        if account.id in seen:
            yield f"{where}.id", f"duplicate id {account.id!r} (also {seen[account.id]})"
        seen.setdefault(account.id, f"{where}.id")
        if account.venue not in config.venues:
            yield f"{where}.venue", f"unknown venue {account.venue!r} (known: {', '.join(config.venues)})"
    lead_ids = [lead.id for lead in config.leads]
    for i, follower in enumerate(config.followers):
        followed: set[str] = set()
        for j, link in enumerate(follower.follows):
            where = f"followers[{i}].follows[{j}]"
            if link.lead not in lead_ids:
                yield f"{where}.lead", f"unknown lead {link.lead!r} (known: {', '.join(lead_ids)})"
            elif link.lead in followed:
                yield f"{where}.lead", f"follower {follower.id!r} already follows lead {link.lead!r}"
            followed.add(link.lead)
            sizing = link.sizing
            if sizing.mode == "fixed_notional" and sizing.notional is None:
                yield f"{where}.sizing.notional", "required when mode is fixed_notional"
            if sizing.mode == "allocation" and sizing.allocation is None:
                yield f"{where}.sizing.allocation", "required when mode is allocation"
        risk = follower.risk
        both = set(risk.symbols_allow or ()) & set(risk.symbols_deny)
        if both:
            yield f"followers[{i}].risk.symbols_deny", f"also in symbols_allow: {', '.join(sorted(both))}"
    yield from _symbol_map_checks(config)
    if config.api.enabled and config.api.token is None and not _is_loopback(config.api.host):
        yield "api.token", f"required when the API listens on a non-loopback address ({config.api.host})"
    if config.feed.backoff_max_s < config.feed.backoff_initial_s:
        yield "feed.backoff_max_s", "must be at least backoff_initial_s"
    cluster = config.cluster
    if cluster is not None and cluster.renew_every_s * 2 > cluster.lease_ttl_s:
        # two renewals may fail (a slow round trip, a GC pause) before the lease lapses
        yield "cluster.lease_renew_s", "must be at most half of lease_ttl_s"
    if cluster is not None and cluster.heartbeat_s * 2 > cluster.heartbeat_ttl_s:
        # a shard must be able to miss a beat without losing its partitions
        yield "cluster.heartbeat_ttl_s", "must be at least twice heartbeat_s"


def _symbol_map_checks(config: AppConfig) -> Iterator[tuple[str, str]]:
    """Each mapped instrument: listed on at least two known venues, each (venue, symbol) in one
    instrument only, a ccxt unified symbol."""
    taken: dict[tuple[str, str], str] = {}
    for name, listings in config.symbol_map.items():
        where = f"symbol_map.{name}"
        if len(listings) < 2:
            yield where, "list the instrument on at least two venues (it maps one venue's name to another's)"
        for venue, listing in listings.items():
            if venue not in config.venues:
                yield f"{where}.{venue}", f"unknown venue {venue!r} (known: {', '.join(config.venues)})"
            if "/" not in listing.symbol:
                yield (
                    f"{where}.{venue}.symbol",
                    (f"{listing.symbol!r} is not a ccxt unified symbol (like '1000PEPE/USDT:USDT')"),
                )
            key = (venue, listing.symbol)
            if key in taken:
                yield (
                    f"{where}.{venue}.symbol",
                    f"{listing.symbol} on {venue} is already mapped in {taken[key]}",
                )
            taken.setdefault(key, where)
