"""Login abuse: wrong passwords are counted per account, and accounts tried per client address.

- Per account (`LOGIN_FAILURE_LIMIT_USER`, 5 per 15 minutes): every failure against one
  account counts, whichever of its names was typed (username in any case, or e-mail) and from
  wherever, over a moving window (the `limits` library, which Flask-Limiter is built on).
- Per client (`LOGIN_FAILURE_LIMIT_IP`, 20 per 15 minutes): the DISTINCT accounts with a
  failure from one address (a sorted set in Redis, one member per account). Many failures on
  one account count once, so someone guessing one password cannot lock out the other users
  behind the same address (a NAT); a client spraying one password over many accounts stops.
  A locked client may still try the accounts it has already tried (each under its own limit).

Past a limit, logins answer 429 with Retry-After until the window has passed. Only failures
count, and a lock ends by itself, so an attacker can slow a user down for one window at most.
"""

from __future__ import annotations

import logging
import math
import time

import redis
from flask import current_app
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from shared.errors import RateLimited
from shared.settings import Settings

logger = logging.getLogger(__name__)


class LoginGuard:
    """Counts failed logins per account and distinct failed accounts per client address."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.login_lockout_enabled
        self.per_account: RateLimitItem = parse(settings.login_failure_limit_user)
        per_client = parse(settings.login_failure_limit_ip)
        self.client_accounts = per_client.amount
        self.client_window = per_client.get_expiry()
        self.prefix = f"login:{settings.mongo_db}"
        storage = storage_from_string(
            settings.redis_url, socket_connect_timeout=1, socket_timeout=1
        )
        self.limiter = MovingWindowRateLimiter(storage)
        self.redis = redis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=1, socket_timeout=1
        )

    def _account_key(self, account: str) -> str:
        return f"{self.prefix}:account:{account}"

    def _client_key(self) -> str:
        return f"{self.prefix}:client:{get_remote_address()}"

    @staticmethod
    def _locked(wait: float) -> RateLimited:
        seconds = max(1, math.ceil(wait))
        return RateLimited(
            f"Too many failed logins; try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )

    def check(self, account: str) -> None:
        """Raise RateLimited while `account` is locked, or this client is and has not tried
        `account` yet."""
        if not self.enabled:
            return
        try:
            key = self._account_key(account)
            if not self.limiter.test(self.per_account, key):
                reset = self.limiter.get_window_stats(self.per_account, key).reset_time
                raise self._locked(reset - time.time())
            client, now = self._client_key(), time.time()
            pipe = self.redis.pipeline()
            pipe.zremrangebyscore(client, "-inf", now - self.client_window)
            pipe.zcard(client)
            pipe.zscore(client, account)
            pipe.zrange(client, 0, 0, withscores=True)
            _, tried, known, oldest = pipe.execute()
            if tried >= self.client_accounts and known is None:
                raise self._locked(oldest[0][1] + self.client_window - now if oldest else 1)
        except RateLimited:
            raise
        except Exception:  # Redis down: log in without the guard rather than refuse everyone
            logger.warning("login guard unavailable", exc_info=True)

    def failed(self, account: str) -> None:
        """Count a wrong password (or an unknown name) for `account` from this client."""
        if not self.enabled:
            return
        try:
            self.limiter.hit(self.per_account, self._account_key(account))
            client = self._client_key()
            pipe = self.redis.pipeline()
            pipe.zadd(client, {account: time.time()})
            pipe.expire(client, int(self.client_window) + 1)
            pipe.execute()
        except Exception:
            logger.warning("login guard unavailable", exc_info=True)


def guard() -> LoginGuard:
    found = current_app.extensions.get("scrapemaster_login_guard")
    if found is None:
        found = LoginGuard(current_app.config["SETTINGS"])
        current_app.extensions["scrapemaster_login_guard"] = found
    return found
