"""Proxy rotation for the engines: one job's view of the pool, and Scrapy's proxy middleware."""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol
from urllib.parse import urlsplit

from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware
from scrapy.exceptions import IgnoreRequest

from scrapers import failures, resolver
from shared.proxies import NO_PROXIES, is_ban
from shared.targets import BLOCKED_TARGET, BlockedTarget, redact_url

logger = logging.getLogger(__name__)
CONNECTION_BAN = "connection failed or timed out through the proxy"


class TargetRefused(IgnoreRequest):
    """A request's target, judged before it went to a proxy, may not be fetched; `problem` is
    the {type, message} the job reports (the proxy is not to blame: no ban)."""

    def __init__(self, problem: dict[str, str]) -> None:
        super().__init__(problem["message"])
        self.problem = problem


def _target(request: Any) -> tuple[str, int]:
    parts = urlsplit(request.url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def judge_target(request: Any) -> None:
    """Refuse `request` (TargetRefused) when the target policy refuses its host: what the
    resolver does for a direct connection, done here for one that goes through a proxy, which
    resolves the name itself. Blocking (a name lookup): run it off the reactor thread."""
    policy = resolver.installed_policy()
    if policy is None:
        return
    host, port = _target(request)
    url = redact_url(request.url)
    try:
        policy.resolve(host, port)
    except BlockedTarget as exc:
        message = f"blocked target {url}: {exc}"
        raise TargetRefused({"type": BLOCKED_TARGET, "message": message}) from None
    except OSError:
        raise TargetRefused(failures.problem("dns_error", url)) from None


class Pool(Protocol):
    """What rotation needs of shared.proxies.ProxyRepository."""

    def pick(self, exclude: list[str] | tuple[str, ...] = ()) -> dict[str, Any] | None: ...

    def record_success(self, proxy_id: str, latency_ms: float) -> None: ...

    def record_failure(self, proxy_id: str, reason: str, ban: bool) -> Any: ...


class Rotation:
    """A job's proxy choice: "none", one explicit URL, or the pool (`pool` given)."""

    def __init__(self, setting: str, pool: Pool | None = None, max_attempts: int = 3) -> None:
        self.setting = setting or "none"
        self.pool = pool
        self.max_attempts = max(1, max_attempts)
        self.exhausted = False
        self.pending: set[Any] = set()  # outcome writes in flight (Scrapy: Deferreds)

    @property
    def enabled(self) -> bool:
        return self.setting != "none"

    @property
    def uses_pool(self) -> bool:
        return self.setting == "pool" and self.pool is not None

    def choose(self, exclude: list[str] | tuple[str, ...] = ()) -> tuple[str | None, str | None]:
        """(proxy id, proxy URL) for the next request; (None, None) when the pool is empty."""
        if self.setting != "pool":
            return None, self.setting
        if self.pool is None:
            self.exhausted = True
            return None, None
        proxy = self.pool.pick(exclude)
        if proxy is None and exclude:  # every other proxy failed this request: try any again
            proxy = self.pool.pick()
        if proxy is None:
            self.exhausted = True
            return None, None
        return proxy["_id"], proxy["url"]

    def succeeded(self, proxy_id: str | None, started: float) -> None:
        if proxy_id and self.pool is not None:
            self.pool.record_success(proxy_id, (time.monotonic() - started) * 1000)

    def failed(self, proxy_id: str | None, reason: str, ban: bool) -> None:
        if proxy_id and self.pool is not None:
            self.pool.record_failure(proxy_id, reason, ban)


class ProxyMiddleware:
    """Sends every request through the job's proxy; on a ban signal, retries another one.

    Runs before Scrapy's HttpProxyMiddleware (which reads `meta["proxy"]`). The rotation is
    the spider's `proxy_rotation` attribute, set by the engine for this job. The pool lives in
    MongoDB: picks and outcomes run on the reactor's thread pool, never on the reactor thread
    (a slow store would stall every request of every job in the process). Retries are
    Scrapy's own `get_retry_request`, counted in `retry_times` and the `proxy_retry` stats.
    """

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> ProxyMiddleware:
        return cls(crawler)

    @property
    def rotation(self) -> Rotation:
        return self.crawler.spider.proxy_rotation

    async def process_request(self, request: Any) -> Any:
        from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
        from twisted.internet.threads import deferToThread

        rotation = self.rotation
        # the target first: a proxy would reach whatever it is asked for
        await maybe_deferred_to_future(deferToThread(judge_target, request))
        excluded = request.meta.get("proxy_excluded", ())
        if rotation.uses_pool:
            chosen = await maybe_deferred_to_future(deferToThread(rotation.choose, excluded))
        else:
            chosen = rotation.choose(excluded)  # one URL or none: no database
        proxy_id, url = chosen
        if url is None:
            engine = self.crawler.engine
            if engine is not None and engine.running:
                deferred_from_coro(engine.close_spider_async(reason=NO_PROXIES["type"]))
            raise IgnoreRequest(NO_PROXIES["message"])
        if rotation.uses_pool:
            resolver.exempt_proxy(url)  # the admin's proxy: connected whatever its address
        request.meta["proxy"] = url
        request.meta["proxy_id"] = proxy_id
        request.meta["proxy_started"] = time.monotonic()
        return None

    def _off_reactor(self, fn: Any, *args: Any) -> None:
        """Record an outcome on the thread pool; a failed write is logged, not raised. The
        engine waits for these before the job ends (`Rotation.pending`)."""
        from twisted.internet.threads import deferToThread

        pending = self.rotation.pending
        d = deferToThread(fn, *args)
        pending.add(d)

        def settled(result: Any) -> None:
            pending.discard(d)
            if hasattr(result, "value"):
                logger.warning("proxy outcome not recorded: %s", result.value)

        d.addBoth(settled)

    def process_response(self, request: Any, response: Any) -> Any:
        proxy_id = request.meta.get("proxy_id")
        text = response.text if response.status == 200 and hasattr(response, "text") else ""
        if is_ban(response.status, text):
            reason = f"ban signal: HTTP {response.status} from {response.url}"
            if response.status == 200:
                reason = f"ban signal: captcha page at {response.url}"
            if proxy_id:
                self._off_reactor(self.rotation.failed, proxy_id, reason, True)
            return self._retry(request, reason) or response
        if proxy_id:
            started = request.meta.get("proxy_started", time.monotonic())
            self._off_reactor(self.rotation.succeeded, proxy_id, started)
        return response

    def process_exception(self, request: Any, exception: Exception) -> Any:
        if isinstance(exception, IgnoreRequest) or "proxy_id" not in request.meta:
            return None
        reason = f"{CONNECTION_BAN}: {type(exception).__name__}"
        if request.meta.get("proxy_id"):
            self._off_reactor(self.rotation.failed, request.meta["proxy_id"], reason, True)
        return self._retry(request, reason)

    def _retry(self, request: Any, reason: str) -> Any:
        """The request again through another proxy, or None when its attempts are used up."""
        from scrapy.downloadermiddlewares.retry import get_retry_request

        rotation = self.rotation
        if not rotation.uses_pool:
            return None
        retry = get_retry_request(
            request,
            spider=self.crawler.spider,
            reason=reason,
            max_retry_times=rotation.max_attempts - 1,
            stats_base_key="proxy_retry",
            logger=logger,
            give_up_log_level=logging.DEBUG,
        )
        if retry is None:
            return None
        excluded = list(request.meta.get("proxy_excluded", ()))
        if request.meta.get("proxy_id"):
            excluded.append(request.meta["proxy_id"])
        retry.meta["proxy_excluded"] = excluded
        for key in ("proxy", "proxy_id", "proxy_started", "download_slot"):
            retry.meta.pop(key, None)
        return retry


class MetaOnlyProxyMiddleware(HttpProxyMiddleware):
    """Scrapy's proxy middleware without the environment's http_proxy/https_proxy: a crawl goes
    through a proxy only when the job's rotation chose a pool proxy (meta["proxy"]). An
    environment proxy would connect for us, and the target policy would see only it."""

    def __init__(self, auth_encoding: str | None = "latin-1") -> None:
        super().__init__(auth_encoding)
        self.proxies = {}

    # without Scrapy's deprecated `spider` argument, hence the narrower signature
    def process_request(self, request: Any) -> Any:  # type: ignore[override]
        # A pool proxy's (host, port) passes the resolver (scrapers/resolver.py); a direct
        # request to it is still a target like any other.
        if not request.meta.get("proxy") and resolver.is_exempt(*_target(request)):
            judge_target(request)
        return super().process_request(request)
