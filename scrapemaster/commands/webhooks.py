"""`scrapemaster webhooks …`: list, add, deliveries, redeliver, ping, delete."""

from __future__ import annotations

import click

from scrapemaster import output
from scrapemaster.commands.common import State, json_option, pass_state

EVENTS = ["job.started", "job.completed", "job.failed", "job.cancelled", "job.changed"]


@click.group()
def webhooks():
    """Signed HTTP callbacks on job events."""


@webhooks.command(name="list")
@json_option
@pass_state
def list_webhooks(state: State, as_json: bool):
    """Your webhooks (without their secrets)."""
    found = state.client.webhooks.list()
    if as_json:
        output.emit_json(found)
        return
    output.table(
        ["ID", "URL", "EVENTS", "ENABLED", "CREATED"],
        (
            [h.get("id"), h.get("webhook_url"), ",".join(h.get("events") or []),
             "yes" if h.get("enabled") else "no", h.get("created_at")]
            for h in found
        ),
    )  # fmt: skip


@webhooks.command(name="add")
@click.argument("url")
@click.option(
    "--event",
    "events",
    multiple=True,
    type=click.Choice(EVENTS),
    help="Repeat; default: started, completed, failed, cancelled.",
)
@click.option("--secret", help="Your own signing secret (16+ characters); else one is made.")
@json_option
@pass_state
def add(state: State, url: str, events: tuple[str, ...], secret: str | None, as_json: bool):
    """Subscribe URL to job events; prints the signing secret (shown this once)."""
    created = state.client.webhooks.create(url, events=list(events) or None, secret=secret)
    if as_json:
        output.emit_json(created)
        return
    output.line(f"webhook {created['id']}: {', '.join(created.get('events') or [])}")
    output.line(f"secret {created.get('secret')}  (shown this once: keep it to check signatures)")


@webhooks.command()
@click.argument("hook_id", metavar="WEBHOOK")
@json_option
@pass_state
def deliveries(state: State, hook_id: str, as_json: bool):
    """Every delivery attempt, newest first."""
    found = state.client.webhooks.deliveries(hook_id)
    if as_json:
        output.emit_json(found)
        return
    output.table(
        ["ID", "TIME", "EVENT", "JOB", "ATTEMPT", "STATE", "HTTP", "ERROR"],
        (
            [d.get("id"), d.get("timestamp"), d.get("event"), d.get("job_id"), d.get("attempt"),
             d.get("state"), d.get("status_code"), d.get("error")]
            for d in found
        ),
    )  # fmt: skip


@webhooks.command()
@click.argument("hook_id", metavar="WEBHOOK")
@click.argument("delivery_id", metavar="DELIVERY")
@pass_state
def redeliver(state: State, hook_id: str, delivery_id: str):
    """Send a delivery's event again."""
    queued = state.client.webhooks.redeliver(hook_id, delivery_id)
    output.line(f"delivery {queued.get('id')}: {queued.get('state')}")


@webhooks.command()
@click.argument("hook_id", metavar="WEBHOOK")
@pass_state
def ping(state: State, hook_id: str):
    """Send a `ping` event."""
    queued = state.client.webhooks.ping(hook_id)
    output.line(f"ping {queued.get('id')}: {queued.get('state')}")


@webhooks.command()
@click.argument("hook_id", metavar="WEBHOOK")
@pass_state
def delete(state: State, hook_id: str):
    """Remove a webhook."""
    state.client.webhooks.delete(hook_id)
    output.line(f"webhook {hook_id}: deleted")


COMMANDS = [webhooks]
