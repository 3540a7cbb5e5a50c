"""The Python client of the ScrapeMaster API: `Client` and its areas (jobs, results, events…)."""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

import httpx

from scrapemaster._paths import seg
from scrapemaster.errors import (
    ApiError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ScrapeMasterError,
    ServerError,
    Unauthorized,
    ValidationFailed,
)
from scrapemaster.events import Events, EventStream
from scrapemaster.jobs import Jobs
from scrapemaster.models import ApiKey, Tokens, User
from scrapemaster.results import Results
from scrapemaster.schedules import Schedules
from scrapemaster.transport import TokenCallback, Transport
from scrapemaster.users import Users
from scrapemaster.webhooks import Webhooks

DEFAULT_API = "http://127.0.0.1:8000"

__all__ = [
    "DEFAULT_API",
    "ApiError",
    "BadRequest",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "EventStream",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ScrapeMasterError",
    "ServerError",
    "Unauthorized",
    "ValidationFailed",
]


class Client:
    """A client of one ScrapeMaster API.

    >>> client = Client("http://127.0.0.1:8000", username="alice", password="correct-horse")
    >>> job = client.jobs.submit(url="http://127.0.0.1:8080/catalog/", engine="scrapy")
    >>> done = client.jobs.wait(job["id"])
    >>> client.results.export(job["id"], "items.csv", format="csv")

    Authenticate with `token` (an access token or an API key, sent as Bearer), `api_key`
    (sent as X-API-Key), or `username` and `password` (logged in on the first request). With
    a `refresh_token`, or after a login, an expired access token is renewed on its 401 and
    the request repeated. `on_tokens(access, refresh)` is called with every new token.
    Events: `read_timeout` (no byte for that long counts as a broken stream; keep it above
    the server's SSE_HEARTBEAT_SECONDS), `max_retries` reconnections in a row.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_API,
        *,
        token: str | None = None,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        refresh_token: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        on_tokens: TokenCallback | None = None,
        read_timeout: float = 60.0,
        max_retries: int = 10,
        reconnect_delay: float | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.transport = Transport(
            base_url,
            token=token,
            api_key=api_key,
            username=username,
            password=password,
            refresh_token=refresh_token,
            timeout=timeout,
            on_tokens=on_tokens,
            http=http,
        )
        self.events = Events(
            self.transport,
            read_timeout=read_timeout,
            max_retries=max_retries,
            reconnect_delay=reconnect_delay,
        )
        self.jobs = Jobs(self.transport, self.events)
        self.results = Results(self.transport)
        self.webhooks = Webhooks(self.transport)
        self.schedules = Schedules(self.transport)
        self.users = Users(self.transport)  # admins only

    @classmethod
    def from_env(cls, **kwargs: Any) -> Client:
        """A client of SCRAPEMASTER_API with SCRAPEMASTER_TOKEN (an access token or API key)."""
        base = os.environ.get("SCRAPEMASTER_API") or DEFAULT_API
        return cls(base, token=os.environ.get("SCRAPEMASTER_TOKEN") or None, **kwargs)

    @property
    def api_url(self) -> str:
        """The API's root, e.g. `http://127.0.0.1:8000/api/v1`."""
        return self.transport.root

    # -- health and accounts --------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """GET /health (no authentication)."""
        return self.transport.call("GET", "/health", auth=False)

    def register(self, username: str, email: str, password: str) -> User:
        """Create an account (no authentication)."""
        body = {"username": username, "email": email, "password": password}
        return self.transport.call("POST", "/auth/register", json=body, auth=False)

    def login(self, username: str, password: str) -> Tokens:
        """Log in; the client uses (and renews) the tokens from then on."""
        return self.transport.login(username, password)

    def refresh(self) -> Tokens:
        """Trade the refresh token for a new access token (done by itself on a 401)."""
        return self.transport.refresh()

    def me(self) -> User:
        """The calling user."""
        return self.transport.call("GET", "/auth/me")

    def create_api_key(self, name: str) -> ApiKey:
        """A new API key; its `key` is in this answer only."""
        return self.transport.call("POST", "/auth/api-keys", json={"name": name})

    def api_keys(self) -> list[ApiKey]:
        """The caller's API keys, without their secrets."""
        return self.transport.call("GET", "/auth/api-keys")

    def revoke_api_key(self, key_id: str) -> None:
        """Revoke an API key; it stops working at once."""
        self.transport.call("DELETE", f"/auth/api-keys/{seg(key_id)}")

    def rotate_webhook_secret(self) -> str:
        """Create or rotate the secret that signs deliveries to jobs' own webhook_url."""
        return self.transport.call("POST", "/auth/webhook-secret")["secret"]

    @property
    def access_token(self) -> str | None:
        return self.transport.access_token

    @property
    def refresh_token(self) -> str | None:
        return self.transport.refresh_token

    # -- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
