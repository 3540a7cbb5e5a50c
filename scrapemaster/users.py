"""Admin: user accounts (`/admin/users`): list, create, change role or active."""

from __future__ import annotations

from typing import Any

from scrapemaster._paths import seg
from scrapemaster.models import AdminUser, UserPage
from scrapemaster.transport import Transport


class Users:
    """`client.users`: the admin's `/admin/users` endpoints (others get Forbidden)."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def list(self, *, q: str | None = None, skip: int = 0, limit: int = 50) -> UserPage:
        """A page of users, newest first: `{total, users}`; `q` matches names and e-mails."""
        params: dict[str, Any] = {"skip": skip, "limit": limit}
        if q:
            params["q"] = q
        return self._t.call("GET", "/admin/users", params=params)

    def create(self, username: str, email: str, password: str, role: str = "user") -> AdminUser:
        """An account made by an admin (the way in while the service's REGISTRATION is closed)."""
        body = {"username": username, "email": email, "password": password, "role": role}
        return self._t.call("POST", "/admin/users", json=body)

    def update(
        self, user_id: str, *, role: str | None = None, active: bool | None = None
    ) -> AdminUser:
        """Change a user's role (user, deployer, admin) and/or active flag. A deactivated
        user's tokens, keys, streams, schedules and webhooks stop within 5 s."""
        body: dict[str, Any] = {}
        if role is not None:
            body["role"] = role
        if active is not None:
            body["active"] = active
        return self._t.call("PATCH", f"/admin/users/{seg(user_id)}", json=body)
