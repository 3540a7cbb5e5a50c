"""`scrapemaster users …` (admins): list, create, update accounts."""

from __future__ import annotations

import sys

import click

from scrapemaster import output
from scrapemaster.commands.common import State, json_option, pass_state

ROLES = ["user", "deployer", "admin"]


@click.group()
def users():
    """User accounts (admins only)."""


@users.command(name="list")
@click.option("--q", "query", metavar="TEXT", help="Part of a username or e-mail, any case.")
@click.option("--skip", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
@pass_state
def list_users(state: State, query: str | None, skip: int, limit: int, as_json: bool):
    """Accounts, newest first, with role and whether they are active."""
    page = state.client.users.list(q=query, skip=skip, limit=limit)
    if as_json:
        output.emit_json(page)
        return
    found = page.get("users") or []
    output.table(
        ["ID", "USERNAME", "EMAIL", "ROLE", "ACTIVE", "CREATED", "LAST LOGIN"],
        (
            [u.get("id"), u.get("username"), u.get("email"), u.get("role"),
             "yes" if u.get("active", True) else "no", u.get("created_at"), u.get("last_login")]
            for u in found
        ),
        caption=f"{skip + len(found)} of {page.get('total', 0)}",
    )  # fmt: skip


@users.command()
@click.argument("username")
@click.option("--email", required=True, help="The account's e-mail address.")
@click.option("--role", type=click.Choice(ROLES), default="user", show_default=True)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (scripts)."
)
@json_option
@pass_state
def create(state: State, username: str, email: str, role: str, password_stdin: bool, as_json: bool):
    """Create an account (the way in while the service's REGISTRATION is closed)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    made = state.client.users.create(username, email, password, role)
    if as_json:
        output.emit_json(made)
        return
    output.line(f"user {made.get('id')}: {made.get('username')} ({made.get('role')})")


@users.command()
@click.argument("user_id", metavar="USER_ID")
@click.option("--role", type=click.Choice(ROLES), help="The new role.")
@click.option(
    "--active/--inactive",
    default=None,
    help="--inactive cuts the user off within 5 s (tokens, keys, streams, schedules, webhooks, "
    "queued jobs); --active restores its schedules.",
)
@json_option
@pass_state
def update(state: State, user_id: str, role: str | None, active: bool | None, as_json: bool):
    """Change a user's role or active flag (USER_ID from `scrapemaster users list`)."""
    if role is None and active is None:
        raise click.UsageError("give --role and/or --active/--inactive")
    changed = state.client.users.update(user_id, role=role, active=active)
    if as_json:
        output.emit_json(changed)
        return
    state_text = "active" if changed.get("active", True) else "inactive"
    output.line(
        f"user {changed.get('id')}: {changed.get('username')} ({changed.get('role')}, {state_text})"
    )


COMMANDS = [users]
