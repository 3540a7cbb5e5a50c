"""Login abuse: failed logins for one username, or from one client address, are counted in
Redis (the `limits` library, which Flask-Limiter is built on); past the limit, logins answer
429 with Retry-After until the window has passed. Only failures count, and the lock ends by
itself, so an attacker can slow a real user down for one window at most, never lock them out.
"""

from __future__ import annotations

import logging
import math
import time

from flask import current_app
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from shared.errors import RateLimited
from shared.settings import Settings

logger = logging.getLogger(__name__)


class LoginGuard:
    """Counts failed logins per username and per client address."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.login_lockout_enabled
        self.per_user: RateLimitItem = parse(settings.login_failure_limit_user)
        self.per_ip: RateLimitItem = parse(settings.login_failure_limit_ip)
        self.prefix = f"login:{settings.mongo_db}"
        storage = storage_from_string(
            settings.redis_url, socket_connect_timeout=1, socket_timeout=1
        )
        self.limiter = MovingWindowRateLimiter(storage)

    def _keys(self, username: str) -> list[tuple[RateLimitItem, str]]:
        return [
            (self.per_user, f"{self.prefix}:user:{username.strip().lower()}"),
            (self.per_ip, f"{self.prefix}:ip:{get_remote_address()}"),
        ]

    def check(self, username: str) -> None:
        """Raise RateLimited while `username` or this client is locked out."""
        if not self.enabled:
            return
        try:
            for item, key in self._keys(username):
                if not self.limiter.test(item, key):
                    reset = self.limiter.get_window_stats(item, key).reset_time
                    wait = max(1, math.ceil(reset - time.time()))
                    raise RateLimited(
                        f"Too many failed logins; try again in {wait} s",
                        headers={"Retry-After": str(wait)},
                    )
        except RateLimited:
            raise
        except Exception:  # Redis down: log in without the guard rather than refuse everyone
            logger.warning("login guard unavailable", exc_info=True)

    def failed(self, username: str) -> None:
        if not self.enabled:
            return
        try:
            for item, key in self._keys(username):
                self.limiter.hit(item, key)
        except Exception:
            logger.warning("login guard unavailable", exc_info=True)


def guard() -> LoginGuard:
    found = current_app.extensions.get("scrapemaster_login_guard")
    if found is None:
        found = LoginGuard(current_app.config["SETTINGS"])
        current_app.extensions["scrapemaster_login_guard"] = found
    return found
