"""Account commands: log in (tokens stored in the user's config folder), log out, who am I."""

from __future__ import annotations

import sys

import click

from scrapemaster import config, output
from scrapemaster.client import Client
from scrapemaster.commands.common import State, json_option, pass_state


@click.command()
@click.option("--username", "-u", help="Asked for when not given.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (scripts)."
)
@pass_state
def login(state: State, username: str | None, password_stdin: bool):
    """Log in and store the tokens (0600) in $XDG_CONFIG_HOME/scrapemaster/."""
    username = username or click.prompt("Username")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True)
    with Client(state.api) as client:
        tokens = client.login(username, password)
    config.save_login(
        state.api, tokens["access_token"], tokens.get("refresh_token"), username, make_default=True
    )
    output.line(f"logged in to {state.api} as {username} ({config.credentials_path()})")


@click.command()
@pass_state
def logout(state: State):
    """Forget the stored tokens of this API."""
    if config.forget(state.api):
        output.line(f"logged out of {state.api}")
    else:
        output.line(f"not logged in to {state.api}")


@click.command()
@json_option
@pass_state
def whoami(state: State, as_json: bool):
    """Show the user the credentials belong to."""
    me = state.client.me()
    if as_json:
        output.emit_json(me)
    else:
        output.fields(
            [
                ("user", me.get("username")),
                ("email", me.get("email")),
                ("role", me.get("role")),
                ("api", state.api),
            ]
        )


COMMANDS = [login, logout, whoami]
