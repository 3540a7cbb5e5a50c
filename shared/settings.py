"""Typed settings read once from environment variables, with safe local defaults."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEST_JWT_SECRET = "test-only-secret-never-accepted-outside-env-test"  # noqa: S105 - ENV=test only
JWT_SECRET_FILE = "jwt-secret"
FLOWER_PASSWORD_FILE = "flower-password"
LOCAL_ENVS = {"local", "test", "development"}


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the process must not start."""


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


@dataclass(frozen=True)
class Settings:
    """Every knob of ScrapeMaster; each field maps to the env var of the same name, upper-cased."""

    env: str = "local"
    redis_url: str = "redis://127.0.0.1:6379/0"
    mongo_url: str = ""  # empty: the embedded SecantusDB server
    mongo_db: str = "scrapemaster"
    mongo_timeout_seconds: float = 3.0  # server selection and connect: a dead store fails fast
    mongo_socket_timeout_seconds: float = 30.0  # one round trip: a stalled store can't freeze us
    var_dir: str = str(ROOT / "var")
    embedded_mongo_port: int = 27117
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = 2
    api_connections: int = 1000  # concurrent connections per API process (gevent)
    flower_port: int = 5555
    flower_host: str = "127.0.0.1"
    flower_user: str = "admin"
    flower_password: str = ""  # empty in local mode: generated into var/flower-password
    jwt_secret_key: str = ""  # empty in local mode: generated into var/jwt-secret
    trusted_proxies: int = 0  # reverse proxies in front of the API that set X-Forwarded-For
    jwt_access_minutes: int = 60
    jwt_refresh_days: int = 30
    admin_username: str = ""
    admin_password: str = ""
    admin_email: str = ""
    log_level: str = "INFO"
    max_request_bytes: int = 1_048_576
    max_pages_cap: int = 10_000
    max_timeout_seconds: int = 3_600
    max_items_per_job: int = 1_000_000
    max_page_bytes: int = 10_485_760
    max_items_per_page: int = 1_000  # items one page may yield; the rest are dropped and logged
    max_field_bytes: int = 65_536  # one field's text; longer values are cut, and logged
    engine_stuck_grace_seconds: float = 60.0  # past a job's timeout: its engine counts as stuck
    max_urls_per_job: int = 100
    preview_timeout_seconds: float = 30.0  # a selector preview's page, once a worker has it
    preview_pickup_seconds: float = 5.0  # wait for a worker to take a preview, then 503
    preview_max_items: int = 20  # items a preview answers (count says how many the page had)
    item_batch_size: int = 500
    progress_interval_seconds: float = 0.5
    event_retention_events: int = 1000  # events kept per job stream (10x per user stream)
    event_retention_seconds: int = 604_800  # a job's events expire this long after the last
    sse_heartbeat_seconds: float = 15.0  # comment line on idle event streams
    streams_max_per_user: int = 10  # open event streams per user: SSE and WebSockets together
    webhook_timeout_seconds: float = 10.0
    webhook_retry_base_seconds: float = 10.0  # attempt n waits base * 2^(n-1)
    webhook_max_attempts: int = 8
    max_webhooks_per_user: int = 20  # every event fans out to each of them
    max_schedules_per_user: int = 100
    schedule_min_interval_seconds: int = 60  # closest two runs of one schedule may be
    schedule_misfire_seconds: int = 300  # after downtime, a slot this late still fires
    scheduler_tick_seconds: float = 2.0  # how often the scheduler looks for due schedules
    scrapy_concurrency: int = 2
    playwright_concurrency: int = 1
    playwright_pages_per_job: int = 2
    browser_recycle_pages: int = 500
    chromium_path: str = "/usr/bin/chromium"
    chromium_sandbox: str = "auto"  # on | off | auto (on unless root; falls back if unusable)
    user_agent: str = "ScrapeMaster/0.1 (+https://github.com/scrapemaster)"
    rate_limit_authenticated: str = "1000/hour"
    rate_limit_anonymous: str = "100/hour"
    rate_limit_enabled: bool = True
    login_lockout_enabled: bool = True  # independent of RATE_LIMIT_ENABLED
    login_failure_limit_user: str = "5 per 15 minutes"  # wrong passwords per account
    login_failure_limit_ip: str = "20 per 15 minutes"  # distinct accounts failed from a client
    registration: str = ""  # open | closed; "": open in local/test/development, else closed
    reconcile_after_seconds: int = 60
    resend_after_seconds: int = 300  # a job pending this long is sent again (then 2x, 4x, ...)
    reconcile_interval_seconds: float = 10.0
    counter_check_seconds: float = 600.0  # how often beat recounts the job counters
    job_retention_days: float = 0.0  # finished jobs older than this go, with items and logs
    retention_interval_seconds: float = 600.0  # how often beat applies JOB_RETENTION_DAYS
    max_stored_items_per_user: int = 0  # items one user may keep stored; 0: no limit
    beat_lock_timeout_seconds: float = 30.0  # a standby beat takes over this long after a death
    job_stale_seconds: int = 20
    max_job_attempts: int = 3  # take-overs after its worker died; then failed `worker_lost`
    worker_shutdown_grace_seconds: float = 20.0  # after SIGTERM: finish, else hand back
    # a worker, beat or scheduler whose liveness file is older than this is hung: replaced
    liveness_timeout_seconds: float = 60.0
    liveness_file: str = ""  # the file this process touches from its main loop; "": none
    proxy_cooldown_seconds: float = 60.0
    proxy_ban_after: int = 3
    proxy_max_attempts: int = 3
    proxy_check_url: str = ""  # empty: the health check only opens a TCP connection to the proxy
    proxy_check_timeout_seconds: float = 5.0
    proxy_check_interval_seconds: float = 60.0
    auto_memory_days: float = 7.0  # how long `auto` remembers a site's engine; 0: never
    robots_cache_seconds: float = 300.0  # a worker keeps a site's robots.txt this long; 0: never
    # target policy (SSRF): "" = allow private targets in local/test/development while API_HOST
    # is loopback, block elsewhere; link-local/metadata addresses are blocked in every mode
    private_targets: str = ""
    target_allowlist: str = ""
    allow_job_proxy_urls: bool = False  # non-admin jobs may name their own proxy URL

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from `environ` (default os.environ); `overrides` win over both."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f.name.upper())
            if raw is None:
                continue
            kind = type(getattr(cls, f.name, "")) if f.default is not None else str
            try:
                if kind is bool:
                    values[f.name] = _bool(raw)
                elif kind is int:
                    values[f.name] = int(raw)
                elif kind is float:
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError as exc:
                raise SettingsError(f"{f.name.upper()}: {exc}") from None
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Fail fast on settings that would make a production deployment unsafe or broken."""
        if self.env not in LOCAL_ENVS:
            if self.jwt_secret_key and len(self.jwt_secret_key) < 16:
                raise SettingsError("JWT_SECRET_KEY must be at least 16 characters")
            if not self.mongo_url:
                raise SettingsError(f"ENV={self.env}: set MONGO_URL to a MongoDB server")
        if not 1 <= self.max_pages_cap <= 1_000_000:
            raise SettingsError("MAX_PAGES_CAP must be between 1 and 1000000")
        if not 1 <= self.max_timeout_seconds <= 86_400:
            raise SettingsError("MAX_TIMEOUT_SECONDS must be between 1 and 86400")
        if self.registration.strip().lower() not in ("", "open", "closed"):
            raise SettingsError("REGISTRATION must be open or closed")
        if self.private_targets.strip().lower() not in ("", "block", "allow"):
            raise SettingsError("PRIVATE_TARGETS must be block or allow")
        try:
            from shared.targets import parse_allowlist

            parse_allowlist(self.target_allowlist)
        except ValueError as exc:
            raise SettingsError(f"TARGET_ALLOWLIST: {exc}") from None
        for name in ("login_failure_limit_user", "login_failure_limit_ip"):
            try:
                from limits import parse

                parse(getattr(self, name))
            except ValueError:
                raise SettingsError(
                    f"{name.upper()}: not a limit like '5 per 15 minutes'"
                ) from None
        if self.liveness_timeout_seconds and not (
            self.liveness_timeout_seconds >= max(10.0, 3 * self.scheduler_tick_seconds)
        ):
            # beat ticks at least every 5 s, the scheduler every SCHEDULER_TICK_SECONDS
            raise SettingsError(
                "LIVENESS_TIMEOUT_SECONDS must be 0 (off) or at least 10 and "
                "3 x SCHEDULER_TICK_SECONDS"
            )
        if self.item_batch_size < 1:
            raise SettingsError("ITEM_BATCH_SIZE must be positive")
        if not 1 <= self.preview_timeout_seconds <= 300:
            raise SettingsError("PREVIEW_TIMEOUT_SECONDS must be between 1 and 300")
        if not 0.1 <= self.preview_pickup_seconds <= 60:
            raise SettingsError("PREVIEW_PICKUP_SECONDS must be between 0.1 and 60")
        if not 1 <= self.preview_max_items <= 1000:
            raise SettingsError("PREVIEW_MAX_ITEMS must be between 1 and 1000")

    def require_api_secrets(self) -> None:
        """The API signs tokens: outside local mode it refuses to start without a real secret.

        Only the API calls this, so workers and beat run without JWT_SECRET_KEY in their
        environment (a job's page can then never read it from a worker)."""
        if self.env not in LOCAL_ENVS and len(self.jwt_secret_key) < 16:
            raise SettingsError(
                f"ENV={self.env}: set JWT_SECRET_KEY to a secret of at least 16 characters"
            )

    def api_jwt_secret(self) -> str:
        """The key that signs tokens: JWT_SECRET_KEY, else (local mode) one generated per install
        into var/, never a constant published in the source."""
        self.require_api_secrets()
        if self.jwt_secret_key:
            return self.jwt_secret_key
        if self.env == "test":
            return TEST_JWT_SECRET
        return local_secret(Path(self.var_dir) / JWT_SECRET_FILE)

    def flower_basic_auth(self) -> str:
        """`user:password` for Flower: FLOWER_PASSWORD, else (local mode) a generated one."""
        password = self.flower_password
        if not password:
            if not self.is_local:
                raise SettingsError(f"ENV={self.env}: set FLOWER_PASSWORD")
            password = local_secret(Path(self.var_dir) / FLOWER_PASSWORD_FILE, 18)
        return f"{self.flower_user}:{password}"

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed (tests)."""
        return replace(self, **changes)

    @property
    def is_local(self) -> bool:
        return self.env in LOCAL_ENVS

    @property
    def registration_open(self) -> bool:
        """Whether POST /auth/register creates accounts (else only an admin does)."""
        chosen = self.registration.strip().lower()
        return chosen == "open" if chosen else self.is_local

    @property
    def effective_mongo_url(self) -> str:
        if self.mongo_url:
            return self.mongo_url
        return embedded_mongo_url(self.embedded_mongo_port)


def embedded_mongo_url(port: int) -> str:
    """URL of the embedded SecantusDB. Retryable writes are off: the server keeps a record per
    retryable write and scans them all on every write, so writes slow down over a long run."""
    return f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"


def local_secret(path: Path, nbytes: int = 48) -> str:
    """The secret stored at `path` (mode 0600), created on first use; safe when processes race."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process is writing it
            text = path.read_text().strip()
            if text:
                return text
            time.sleep(0.02)
        raise SettingsError(f"{path} is empty; delete it to generate a new secret") from None
    value = secrets.token_urlsafe(nbytes)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, built from the environment on first use."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current


def set_settings(settings: Settings) -> None:
    """Install `settings` as the process-wide settings (app factories and tests)."""
    global _current
    _current = settings
