"""The `scrapemaster` command: submit and follow jobs, export results, manage schedules,
webhooks and (admins) users. Every failure is one line on stderr and an exit code
(commands/common.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from scrapemaster import errors
from scrapemaster.commands import account, jobs, results, schedules, users, webhooks
from scrapemaster.commands.common import (
    API_ERROR,
    AUTH,
    CONNECTION,
    INTERNAL,
    INTERRUPTED,
    USAGE,
    State,
)

EPILOG = (
    "Environment: SCRAPEMASTER_API (default http://127.0.0.1:8000), SCRAPEMASTER_TOKEN (an "
    "access token or API key; else the login stored by `scrapemaster login`). Exit codes: 0 ok, "
    "1 job failed or cancelled, 2 usage, 3 API error (not found, conflict, invalid), 4 "
    "authentication, 5 connection, 130 interrupted."
)
LOGIN_HINT = "log in with `scrapemaster login` or set SCRAPEMASTER_TOKEN"


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--api", metavar="URL", help="The API (default: $SCRAPEMASTER_API).")
@click.option("--token", metavar="TOKEN", help="Access token or API key ($SCRAPEMASTER_TOKEN).")
@click.version_option("0.1.0", prog_name="scrapemaster")
@click.pass_context
def cli(ctx: click.Context, api: str | None, token: str | None) -> None:
    """ScrapeMaster from the command line."""
    state = ctx.obj = State(api, token)
    ctx.call_on_close(state.close)


for module in (account, jobs, results, schedules, users, webhooks):
    for command in module.COMMANDS:
        cli.add_command(command)


def _fail(message: str, code: int) -> int:
    text = " ".join(str(message).split())  # one line, whatever the message holds
    sys.stderr.write(f"scrapemaster: {text}\n")
    sys.stderr.flush()
    return code


def _usage(exc: click.UsageError) -> str:
    where = exc.ctx.command_path if exc.ctx else "scrapemaster"
    return f"{exc.format_message()} (see `{where} --help`)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; the exit code."""
    try:
        code = cli.main(args=argv, prog_name="scrapemaster", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except click.exceptions.NoArgsIsHelpError as exc:  # `scrapemaster`, `scrapemaster schedules`
        if exc.ctx is not None:
            click.echo(exc.ctx.get_help())
        return 0
    except click.UsageError as exc:
        return _fail(_usage(exc), USAGE)
    except click.ClickException as exc:
        return _fail(exc.format_message(), USAGE)
    except click.Abort:
        return _fail("interrupted", INTERRUPTED)
    except (errors.Unauthorized, errors.Forbidden) as exc:
        hint = f"; {LOGIN_HINT}" if isinstance(exc, errors.Unauthorized) else ""
        return _fail(exc.describe() + hint, AUTH)
    except errors.ApiError as exc:
        return _fail(exc.describe(), API_ERROR)
    except errors.ConnectionFailed as exc:
        return _fail(str(exc), CONNECTION)
    except errors.ScrapeMasterError as exc:
        return _fail(str(exc), API_ERROR)
    except KeyboardInterrupt:
        return _fail("interrupted", INTERRUPTED)
    except OSError as exc:  # the local side: an output file that cannot be written
        where = f" {exc.filename}" if exc.filename else ""
        return _fail(f"cannot write{where}: {exc.strerror or exc}", USAGE)
    except Exception as exc:
        if os.environ.get("SCRAPEMASTER_DEBUG"):
            raise
        name = type(exc).__name__
        return _fail(f"unexpected error: {name}: {exc} (SCRAPEMASTER_DEBUG=1 shows more)", INTERNAL)


if __name__ == "__main__":
    sys.exit(main())
