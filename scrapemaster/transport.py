"""HTTP to the API on httpx: credentials, renewal of an expired token, errors as exceptions."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from scrapemaster import errors

API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
TokenCallback = Callable[[str, str | None], None]


def api_root(base_url: str) -> str:
    """`http://host:8000`, `…/api/v1` or `…/api/v1/` as `http://host:8000/api/v1`."""
    root = base_url.strip().rstrip("/")
    if not root.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {base_url!r}")
    return root if root.endswith(API_PREFIX) else root + API_PREFIX


class Transport:
    """One httpx client for one API, holding the caller's credentials.

    Credentials, in order: an API key (`X-API-Key`), an access token (`Bearer`, which may also
    be an API key), or a username and password that log in on the first request. With a
    refresh token (given, or from that login), a 401 renews the access token once and repeats
    the request; failing that, a username and password log in again. `on_tokens(access,
    refresh)` hears of every new token, so a caller can store it.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        refresh_token: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        on_tokens: TokenCallback | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.root = api_root(base_url)
        self.access_token = token
        self.api_key = api_key
        self.username, self.password = username, password
        self.refresh_token = refresh_token
        self.on_tokens = on_tokens
        self.http = http or httpx.Client(
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
            headers={"User-Agent": "scrapemaster-client/0.1"},
            follow_redirects=False,
        )
        self._renewing = threading.Lock()

    # -- credentials ----------------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        if self.api_key:
            return {"X-API-Key": self.api_key}
        if not self.access_token and self.username and self.password:
            self.login(self.username, self.password)
        if self.access_token:
            return {"Authorization": f"Bearer {self.access_token}"}
        return {}

    def _tokens_changed(self) -> None:
        if self.on_tokens and self.access_token:
            self.on_tokens(self.access_token, self.refresh_token)

    def login(self, username: str, password: str) -> Any:
        """POST /auth/login; keeps the access and refresh tokens."""
        answer = self.call(
            "POST", "/auth/login", json={"username": username, "password": password}, auth=False
        )
        self.access_token = answer["access_token"]
        self.refresh_token = answer.get("refresh_token") or self.refresh_token
        self._tokens_changed()
        return answer

    def refresh(self) -> Any:
        """POST /auth/refresh with the refresh token; keeps the new access token."""
        if not self.refresh_token:
            raise errors.Unauthorized(401, "No refresh token: log in again", "unauthorized")
        answer = self.call(
            "POST", "/auth/refresh", json={"refresh_token": self.refresh_token}, auth=False
        )
        self.access_token = answer["access_token"]
        self._tokens_changed()
        return answer

    def _can_renew(self) -> bool:
        return not self.api_key and bool(self.refresh_token or (self.username and self.password))

    def _renew(self, stale: str | None) -> None:
        with self._renewing:
            if self.access_token != stale:
                return  # another thread renewed it meanwhile
            if self.refresh_token:
                try:
                    self.refresh()
                    return
                except errors.Unauthorized:
                    if not (self.username and self.password):
                        raise
            assert self.username and self.password
            self.login(self.username, self.password)

    # -- requests -------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.root + path

    def _send(self, request: httpx.Request, stream: bool) -> httpx.Response:
        try:
            return self.http.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise errors.ConnectionFailed(f"cannot reach {self.root}: {_reason(exc)}") from exc

    def send(
        self, method: str, path: str, *, auth: bool = True, stream: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """Send a request; a non-2xx answer raises its ApiError (after one token renewal)."""
        extra = kwargs.pop("headers", None) or {}
        headers = {**(self._auth_headers() if auth else {}), **extra}
        used = self.access_token
        response = self._send(
            self.http.build_request(method, self.url(path), headers=headers, **kwargs), stream
        )
        if response.status_code == 401 and auth and self._can_renew():
            response.close()
            self._renew(used)
            headers = {**self._auth_headers(), **extra}
            response = self._send(
                self.http.build_request(method, self.url(path), headers=headers, **kwargs), stream
            )
        if not response.is_success:
            try:
                if stream:
                    response.read()
            except httpx.TransportError:
                pass
            finally:
                response.close()
            raise errors.error_from(response)
        return response

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON body of a request (None for 204)."""
        response = self.send(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise errors.ApiError(
                response.status_code,
                f"answer of {method} {path} is not JSON",
                request_id=response.headers.get("X-Request-ID"),
            ) from None

    @contextlib.contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed answer, closed on leaving the block."""
        response = self.send(method, path, stream=True, **kwargs)
        try:
            yield response
        finally:
            response.close()

    def close(self) -> None:
        self.http.close()


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({text})"
    return text
