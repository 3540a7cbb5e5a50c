"""Typed settings read once from environment variables, with safe local defaults."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEST_JWT_SECRET = "test-only-secret-never-accepted-outside-env-test"  # noqa: S105 - ENV=test only
JWT_SECRET_FILE = "jwt-secret"
# ENV=test only, like TEST_JWT_SECRET: test stacks share it without a file
TEST_SECRETS_KEY = "test-only-secrets-key-never-accepted-outside-env-test"  # noqa: S105
SECRETS_KEY_FILE = "secrets-key"
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


def setting(default: Any, doc: str, *, shown: str | None = None) -> Any:
    """A settings field with its description: docs/configuration.md is generated from these
    (`python -m shared.settings_docs`), so the code and the table cannot disagree. `shown` is
    the default as the docs print it (Markdown), when the value itself would mislead (a path,
    a rule)."""
    metadata = {"doc": doc} if shown is None else {"doc": doc, "shown": shown}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Every knob of ScrapeMaster; each field maps to the env var of the same name, upper-cased."""

    env: str = setting(
        "local",
        "`local`, `test`, `development`, or anything else for production rules: a process then "
        "refuses to start without `MONGO_URL`, the API without `JWT_SECRET_KEY`, Flower without "
        "`FLOWER_PASSWORD`",
    )
    redis_url: str = setting(
        "redis://127.0.0.1:6379/0",
        "Celery broker and events. `make run` starts `redis-server` when nothing answers here",
    )
    mongo_url: str = setting(
        "", "MongoDB server. When empty, `make run` starts the embedded SecantusDB server"
    )
    mongo_db: str = setting("scrapemaster", "database name")
    mongo_timeout_seconds: float = setting(
        3.0, "MongoDB server selection and connect timeout: a dead store fails fast (503)"
    )
    mongo_socket_timeout_seconds: float = setting(
        30.0, "one MongoDB round trip: a stalled store cannot freeze a worker"
    )
    var_dir: str = setting(
        str(ROOT / "var"), "data of the embedded services and local secrets", shown="`./var`"
    )
    embedded_mongo_port: int = setting(27117, "port of the embedded SecantusDB")
    api_host: str = setting("127.0.0.1", "address the API listens on")
    api_port: int = setting(8000, "port the API listens on")
    api_workers: int = setting(2, "gunicorn processes of the API (gevent workers)")
    api_connections: int = setting(
        1000, "concurrent connections per API process (gevent; event streams hold one each)"
    )
    flower_port: int = setting(5555, "port Flower listens on")
    flower_host: str = setting("127.0.0.1", "address Flower listens on")
    flower_user: str = setting("admin", "Flower's basic-auth user")
    flower_password: str = setting(
        "",
        "Flower's basic-auth password; local mode generates one into `var/flower-password`, "
        "elsewhere it is required",
    )
    jwt_secret_key: str = setting(
        "",
        "signs tokens; only the API gets it. Local mode generates one per install into "
        "`var/jwt-secret`; **required (at least 16 characters) in production**",
    )
    secrets_key: str = setting(
        "",
        "encrypts the secrets of jobs and schedules at rest (login field values, cookie values, "
        "`Authorization`/`Cookie` header values, kept sessions); the API and the crawl workers "
        "need it. Comma-separated to rotate: the first encrypts, each one decrypts. Local mode "
        "generates one per install into `var/secrets-key`; **required (at least 16 characters) "
        "in production**",
    )
    trusted_proxies: int = setting(
        0,
        "reverse proxies in front of the API whose `X-Forwarded-For`/`-Proto` are trusted; "
        "0 ignores those headers (a client could forge them)",
    )
    jwt_access_minutes: int = setting(60, "lifetime of an access token")
    jwt_refresh_days: int = setting(30, "lifetime of a refresh token")
    admin_username: str = setting(
        "", "admin account created (or reset) at start-up, with `ADMIN_PASSWORD`"
    )
    admin_password: str = setting("", "password of the `ADMIN_USERNAME` account")
    admin_email: str = setting("", "e-mail of the `ADMIN_USERNAME` account")
    log_level: str = setting("INFO", "log level of every process")
    max_request_bytes: int = setting(1_048_576, "largest request body (413 beyond)")
    max_pages_cap: int = setting(
        10_000,
        "highest `max_pages` a job may ask for (1 to 1000000: raising it raises the bound)",
    )
    max_timeout_seconds: int = setting(
        3_600, "highest `timeout_seconds` a job may ask for (1 to 86400)"
    )
    max_items_per_job: int = setting(1_000_000, "a job stops collecting beyond this")
    max_page_bytes: int = setting(
        10_485_760, "larger pages are dropped, in both engines (`page_too_large`)"
    )
    max_items_per_page: int = setting(
        1_000, "items one page may yield; the rest are dropped and logged"
    )
    max_field_bytes: int = setting(65_536, "text of one field; longer values are cut, and logged")
    max_file_bytes: int = setting(
        10_485_760,
        "one screenshot or PDF of a job (`output`, the `screenshot` action): a larger "
        "screenshot is clipped from the top to fit, a larger PDF is not stored (a warning)",
    )
    max_files_per_job: int = setting(
        1_000, "screenshots and PDFs one job stores (0: none); beyond, none more (a warning)"
    )
    engine_stuck_grace_seconds: float = setting(
        60.0,
        "past a job's `timeout_seconds`, a crawl that has not stopped counts as stuck: the job "
        "fails and its worker process is replaced",
    )
    max_urls_per_job: int = setting(100, "start URLs per job")
    preview_timeout_seconds: float = setting(
        30.0,
        "a selector preview's page, once a worker has it (its `timeout_seconds` is cut to "
        "this); past it the API answers 504. 1 to 300",
    )
    preview_pickup_seconds: float = setting(
        5.0, "how long the API waits for a worker to take a preview before it answers 503"
    )
    preview_max_items: int = setting(
        20, "items a preview answers (`count` still says how many the page has); 1 to 1000"
    )
    item_batch_size: int = setting(500, "items per MongoDB write")
    progress_interval_seconds: float = setting(
        0.5, "how often counters and the heartbeat reach the job"
    )
    event_retention_events: int = setting(
        1000, "events kept per job stream (10x that per user stream)"
    )
    event_retention_seconds: int = setting(
        604_800, "how long a job's events are kept after its last one"
    )
    sse_heartbeat_seconds: float = setting(15.0, "comment line on idle event streams")
    streams_max_per_user: int = setting(
        10, "open event streams per user, SSE and WebSockets together; one more answers 429"
    )
    webhook_timeout_seconds: float = setting(10.0, "one webhook delivery attempt's timeout")
    webhook_retry_base_seconds: float = setting(
        10.0, "webhook back-off base: attempt n waits base x 2^(n-1)"
    )
    webhook_max_attempts: int = setting(8, "delivery attempts before a delivery is `failed`")
    max_webhooks_per_user: int = setting(
        20, "webhooks one user may have (every event fans out to each); one more answers 409"
    )
    max_schedules_per_user: int = setting(100, "schedules one user may have; one more answers 409")
    schedule_min_interval_seconds: int = setting(
        60, "the closest two runs of a schedule may be; a cron that fires more often answers 422"
    )
    schedule_misfire_seconds: int = setting(
        300,
        "after downtime, a slot at most this late still fires (only the latest); older ones "
        "are recorded as `missed`",
    )
    scheduler_tick_seconds: float = setting(
        2.0,
        "how often the scheduler looks for due schedules and ended runs (a run starts at most "
        "this late)",
    )
    playwright_pages_per_job: int = setting(2, "pages rendered at once within a browser job")
    browser_recycle_pages: int = setting(500, "Chromium is relaunched after this many pages")
    action_timeout_seconds: float = setting(
        10.0,
        "how long one browser action (`config.actions`, a `next_click`) may take unless the "
        "step sets its own `timeout_seconds`; always within the job's remaining time",
    )
    chromium_path: str = setting("/usr/bin/chromium", "the browser (Debian package `chromium`)")
    chromium_sandbox: str = setting(
        "auto",
        "`on`, `off`, or `auto` (on unless running as root); falls back with a warning where "
        "the platform refuses it",
    )
    user_agent: str = setting(
        "ScrapeMaster/0.1 (+https://github.com/scrapemaster)",
        "default User-Agent (a job's `headers` may override it)",
    )
    rate_limit_reads: str = setting(
        "1200/minute",
        "requests per user that only read (GET, HEAD: lists, details, logs, results, files, "
        "event streams, the dashboard's calls); per minute, so a runaway script cannot lock "
        "its user's dashboard out for long. Every `RATE_LIMIT_*` takes `limits` strings, "
        "several joined by `;` (`10/second;600/minute`), or empty for no limit",
    )
    rate_limit_writes: str = setting(
        "1000/hour",
        "requests per user that change records without starting work (POST, PUT, PATCH, "
        "DELETE: cancel, delete, schedules, webhooks, keys, eggs)",
    )
    rate_limit_submissions: str = setting(
        "300/hour",
        "requests per user that start work: `POST /jobs`, `/jobs/preview`, retry, reset, "
        "retry-failed, a schedule's run-now, Scrapyd's `schedule.json`",
    )
    rate_limit_authenticated: str = setting(
        "",
        "deprecated name of `RATE_LIMIT_WRITES` (it counted every request); used for writes "
        "when `RATE_LIMIT_WRITES` is not set",
    )
    rate_limit_anonymous: str = setting(
        "100/hour", "requests per client address without valid credentials (login, register)"
    )
    rate_limit_enabled: bool = setting(True, "apply the rate limits")
    login_lockout_enabled: bool = setting(
        True, "count failed logins (independent of `RATE_LIMIT_ENABLED`)"
    )
    login_failure_limit_user: str = setting(
        "5 per 15 minutes",
        "wrong passwords per account (whichever of its names is typed) before logins answer 429",
    )
    login_failure_limit_ip: str = setting(
        "20 per 15 minutes",
        "distinct accounts with a failed login from one client address before its logins "
        "answer 429",
    )
    registration: str = setting(
        "",
        "`open` or `closed` self-registration (`POST /auth/register`); empty: `open` in "
        "local/test/development, `closed` elsewhere, where an admin creates accounts",
        shown="*(by `ENV`)*",
    )
    reconcile_after_seconds: int = setting(60, "grace before the reconciler re-sends a pending job")
    resend_after_seconds: int = setting(
        300,
        "a job still pending this long after it was queued is sent again (then after 2x, 4x, "
        "... that): a killed worker may hold its message",
    )
    reconcile_interval_seconds: float = setting(
        10.0, "how often beat runs the reconciler (queue `maintenance`)"
    )
    counter_check_seconds: float = setting(
        600.0,
        "how often beat recounts the job counters and corrects one that a process killed "
        "mid-write left off",
    )
    job_retention_days: float = setting(
        0.0,
        "finished jobs whose last change is older than this are deleted with their items, logs "
        "and events, and so are older webhook delivery attempts; 0 keeps everything",
    )
    retention_interval_seconds: float = setting(
        600.0, "how often beat applies `JOB_RETENTION_DAYS`"
    )
    max_stored_items_per_user: int = setting(
        0,
        "items one user may keep stored: past it, `POST /jobs` answers 409 and a job that "
        "starts without room fails with `quota_exceeded`; 0: no limit",
    )
    quota_concurrent_jobs: int = setting(
        0,
        "jobs one user runs at once (per user: `PATCH /admin/users/{id}` `quotas`); the rest "
        "wait as `pending`, in order; 0 or empty: unlimited",
    )
    quota_pages_per_month: int = setting(
        0,
        "pages one user's jobs fetch per calendar month (UTC); at it, `POST /jobs` answers 429 "
        "`quota_exceeded` and a running job stops at it, items kept; 0 or empty: unlimited",
    )
    quota_browser_minutes_per_month: int = setting(
        0,
        "minutes of open browser tabs one user's jobs use per calendar month (UTC), enforced "
        "like the pages quota; 0 or empty: unlimited",
    )
    quota_storage_bytes: int = setting(
        0,
        "bytes one user may store (files and eggs); at it, `POST /jobs` answers 429 "
        "`quota_exceeded`; 0 or empty: unlimited",
    )
    quota_wait_seconds: float = setting(
        3.0,
        "a job held back by its owner's `QUOTA_CONCURRENT_JOBS` looks again after this long",
    )
    metrics_top_users: int = setting(
        10,
        "`/metrics` gives this month's usage per user for this many users (most pages first); "
        'the others are summed as `user="other"`',
    )
    beat_lock_timeout_seconds: float = setting(
        30.0, "a standby beat takes over this long after the active one died"
    )
    job_stale_seconds: int = setting(
        20, "a running job with an older heartbeat has lost its worker"
    )
    max_job_attempts: int = setting(
        3,
        "how many times a job whose worker died is taken over; when its worker dies once more "
        "it becomes `failed` with `error.type` `worker_lost` (a poison job); "
        "`POST /jobs/{id}/retry` runs it again with a fresh count",
    )
    worker_shutdown_grace_seconds: float = setting(
        20.0,
        "after `SIGTERM`, a running job has this long to finish; then it stops and is handed "
        "back to the queue. Keep it under the orchestrator's stop grace",
    )
    liveness_timeout_seconds: float = setting(
        60.0,
        "a worker, beat or scheduler whose liveness file is older than this is hung: `make run`, "
        "the Kubernetes probes and the compose healthchecks kill and replace it. 0: off; "
        "otherwise at least 10 and 3 x `SCHEDULER_TICK_SECONDS`",
    )
    liveness_file: str = setting(
        "",
        "the file a worker, beat or scheduler touches from its main loop (it holds the "
        "process's pid); empty: none",
        shown="*(empty)*; `make run`: `var/liveness/NAME`; compose, Kubernetes: "
        "`/tmp/scrapemaster-alive`",
    )
    proxy_cooldown_seconds: float = setting(
        60.0, "first cool-down of a proxy after a ban; doubles with each ban in a row"
    )
    proxy_ban_after: int = setting(3, "bans in a row that mark a proxy `banned`")
    proxy_max_attempts: int = setting(
        3, "proxies a request (or a Playwright page) tries before its failure stands"
    )
    proxy_check_url: str = setting(
        "",
        "URL fetched through a proxy by the health check; empty: a TCP connect to the proxy only",
    )
    proxy_check_timeout_seconds: float = setting(5.0, "timeout of one proxy health check")
    proxy_check_interval_seconds: float = setting(
        60.0, "how often beat runs the proxy health check"
    )
    auto_memory_days: float = setting(
        7.0,
        "how long `auto` remembers the engine a site needs; 0 turns the memory off (every job "
        "measures)",
    )
    robots_cache_seconds: float = setting(
        300.0,
        "how long a worker process keeps a site's robots.txt for its next jobs; 0: every job "
        "fetches it",
    )
    domain_concurrency: int = setting(
        8,
        "requests at once to one site (registered domain; an IP or `localhost` per port) from "
        "the whole fleet, every job and engine together, shared through Redis; 0: no shared "
        "limit. A job's own `concurrency` still applies within it",
    )
    domain_delay_seconds: float = setting(
        0.0,
        "seconds between two requests to one site from the whole fleet (the robots.txt "
        "`Crawl-delay` when larger and the job obeys robots.txt, up to 60). A job's own "
        "`download_delay` still applies within it",
    )
    domain_lease_seconds: float = setting(
        30.0,
        "a request's hold on a site slot, renewed while it runs: a worker that dies "
        "mid-request gives its slots back after this long",
    )
    private_targets: str = setting(
        "",
        "`block` or `allow` private and internal targets; empty: `allow` in "
        "local/test/development while `API_HOST` is a loopback address, `block` elsewhere. "
        "Link-local and cloud-metadata addresses are blocked in both modes unless "
        "`TARGET_ALLOWLIST` names them",
        shown="*(by `ENV` and `API_HOST`)*",
    )
    target_allowlist: str = setting(
        "", "comma-separated CIDRs, IPs, host names or `host:port` reachable despite `block`"
    )
    allow_job_proxy_urls: bool = setting(
        False,
        "let non-admin jobs name their own `config.proxy` URL (a connection the target policy "
        "cannot see through)",
    )
    spider_max_memory_mb: int = setting(
        1024,
        "address space of one run of a user's spider (`engine: spider`, RLIMIT_AS): beyond, "
        "the job fails `memory_limit`; 0: unlimited",
    )
    spider_max_egg_mb: int = setting(50, "largest Scrapy project egg a user may upload")
    spider_list_timeout_seconds: float = setting(
        60.0, "time a project's egg may take to list its spiders (`listspiders.json`, POST /jobs)"
    )
    spider_run_as_user: str = setting(
        "nobody",
        "the unprivileged user a spider runs as when the worker runs as root, so the service's "
        "files are out of its reach",
    )
    spider_python: str = setting(
        "",
        "the Python a spider runs with; empty: the worker's own (or, when the spider's user "
        "cannot reach it, the system's Python of the same version with the worker's packages)",
    )

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
                    # an empty quota is unlimited (0)
                    blank = not raw.strip() and f.name.startswith("quota_")
                    values[f.name] = 0 if blank else int(raw)
                elif kind is float:
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError as exc:
                raise SettingsError(f"{f.name.upper()}: {exc}") from None
        if "RATE_LIMIT_AUTHENTICATED" in environ and "RATE_LIMIT_WRITES" not in environ:
            values["rate_limit_writes"] = environ["RATE_LIMIT_AUTHENTICATED"]  # the old name
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
            if any(0 < len(k.strip()) < 16 for k in self.secrets_key.split(",")):
                raise SettingsError("SECRETS_KEY: each key must be at least 16 characters")
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
        for name in (
            "rate_limit_reads",
            "rate_limit_writes",
            "rate_limit_submissions",
            "rate_limit_anonymous",
        ):
            try:
                from limits import parse_many

                if getattr(self, name):  # empty: that bucket is not limited
                    parse_many(getattr(self, name))
            except ValueError:
                raise SettingsError(f"{name.upper()}: not a limit like '600/minute'") from None
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
        if not 1024 <= self.max_file_bytes <= 1_073_741_824:
            raise SettingsError("MAX_FILE_BYTES must be between 1024 and 1073741824")
        if self.max_files_per_job < 0:
            raise SettingsError("MAX_FILES_PER_JOB must be 0 or more")

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

    def secrets_keys(self) -> list[str]:
        """The keys that seal job secrets (shared/vault.py), newest first: SECRETS_KEY, else
        (local mode) one generated per install into var/, like the JWT key."""
        keys = [k.strip() for k in self.secrets_key.split(",") if k.strip()]
        if keys:
            return keys
        if self.env == "test":
            return [TEST_SECRETS_KEY]
        if not self.is_local:
            raise SettingsError(f"ENV={self.env}: set SECRETS_KEY (at least 16 characters)")
        return [local_secret(Path(self.var_dir) / SECRETS_KEY_FILE)]

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
