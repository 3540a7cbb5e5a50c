"""The `scrapemaster` command against real processes, run as a user runs it: a subprocess of
the installed console script, configured by SCRAPEMASTER_API / SCRAPEMASTER_TOKEN or a login."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from testing.helpers import catalog_crawl, closed_port
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SCRIPT = Path(sys.executable).with_name("scrapemaster")
PASSWORD = "s3cret-pass"


def cli(*args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 120):
    """Run the console script (or `python -m scrapemaster.cli` without one)."""
    argv = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "scrapemaster.cli"]
    return subprocess.run(
        argv + list(args), env=env, input=stdin, capture_output=True, text=True, timeout=timeout
    )


def one_line_error(result) -> str:
    """The whole of stderr, which must be one `scrapemaster: …` line (never a traceback)."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("scrapemaster: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def site():
    with SiteServer(pages=5, delay=0.3) as server:
        yield server


@pytest.fixture(scope="module")
def user(stack, tmp_path_factory):
    """A registered user and the environment of a shell that logged in as them."""
    name = f"cli{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPEMASTER_")}
    env.update(
        SCRAPEMASTER_API=stack.base,
        XDG_CONFIG_HOME=str(tmp_path_factory.mktemp("xdg")),
        COLUMNS="200",
    )
    stack.register(name, PASSWORD)
    done = cli("login", "--username", name, "--password-stdin", env=env, stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    return {"name": name, "env": env}


@pytest.fixture(scope="module")
def finished(user, site, tmp_path_factory):
    """`submit job.json --wait` of the 5-page catalog: its run, and the job it made."""
    spec = catalog_crawl(site)
    spec["selectors"] = {"sku": "./@data-sku", "price": "span.price::text"}
    path = tmp_path_factory.mktemp("job") / "job.json"
    path.write_text(json.dumps(spec))
    run = cli("submit", str(path), "--wait", env=user["env"])
    status = cli("list", "--json", "--limit", "1", env=user["env"])
    job = json.loads(status.stdout)["jobs"][0]
    return run, job


def test_login_keeps_tokens_in_the_xdg_config_dir_readable_by_the_user_only(user):
    path = Path(user["env"]["XDG_CONFIG_HOME"]) / "scrapemaster" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    who = cli("whoami", "--json", env=user["env"])
    assert who.returncode == 0 and json.loads(who.stdout)["username"] == user["name"]


def test_submit_wait_shows_live_progress_and_exits_0_when_completed(finished):
    run, job = finished
    assert run.returncode == 0, run.stderr
    assert (
        run.stdout.strip()
        == f"completed: 5 pages, 50 items in {job['duration_seconds']:.1f} s (job {job['id']})"
    )
    progress = [line.split() for line in run.stderr.splitlines() if line.startswith("running")]
    pages = [int(words[words.index("pages") + 1]) for words in progress]
    assert pages == sorted(pages) and any(0 < n < 5 for n in pages)  # it moved while running
    assert run.stderr.splitlines()[-1].split()[:2] == ["completed", "100%"]


def test_export_writes_a_csv_with_every_row(user, finished, tmp_path):
    job = finished[1]
    target = tmp_path / "items.csv"
    done = cli("export", job["id"], "--format", "csv", "-o", str(target), env=user["env"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"saved {target} (")
    rows = list(csv.DictReader(target.open()))
    assert [r["sku"] for r in rows] == [f"SKU-{n:05d}" for n in range(1, 51)]
    assert rows[1]["price"] == "$3.00"


def test_read_commands_answer_json_for_scripts(user, finished):
    job_id = finished[1]["id"]
    status = json.loads(cli("status", job_id, "--json", env=user["env"]).stdout)
    assert status["status"] == "completed" and status["items_scraped"] == 50
    page = json.loads(cli("results", job_id, "--limit", "3", "--json", env=user["env"]).stdout)
    assert page["total"] == 50 and [r["data"]["sku"] for r in page["results"]][-1] == "SKU-00003"
    every = json.loads(cli("results", job_id, "--all", "--json", env=user["env"]).stdout)
    assert len(every) == 50
    logs = cli("logs", job_id, "--json", env=user["env"]).stdout.splitlines()
    assert json.loads(logs[-1])["message"].startswith("completed")
    table = cli("list", env=user["env"])
    assert job_id in table.stdout and "completed" in table.stdout


def test_a_bad_token_is_one_line_and_exit_4(user):
    env = {**user["env"], "SCRAPEMASTER_TOKEN": "forged-token"}
    done = cli("list", env=env)
    assert done.returncode == 4
    assert "401 unauthorized" in one_line_error(done)


def test_a_missing_job_is_one_line_and_exit_3(user):
    done = cli("status", "no-such-job", env=user["env"])
    assert done.returncode == 3
    assert "not found" in one_line_error(done)


def test_a_conflict_and_bad_input_are_one_line_and_exit_3(user, finished):
    done = cli("cancel", finished[1]["id"], env=user["env"])
    assert done.returncode == 3 and "409 conflict" in one_line_error(done)
    bad = cli("submit", "--url", "http://127.0.0.1:1/", "--max-pages", "999999", env=user["env"])
    assert bad.returncode == 3 and "config.max_pages" in one_line_error(bad)


def test_usage_errors_and_an_unreachable_api_have_their_own_exit_codes(user, tmp_path):
    assert cli("submit", "--frob", env=user["env"]).returncode == 2
    missing = cli("submit", str(tmp_path / "nope.json"), env=user["env"])
    assert missing.returncode == 2 and "cannot read" in one_line_error(missing)
    with closed_port() as refusing:
        down = cli("list", env={**user["env"], "SCRAPEMASTER_API": f"http://127.0.0.1:{refusing}"})
    assert down.returncode == 5 and "cannot reach" in one_line_error(down)


def test_a_failed_job_exits_1_with_its_error(user):
    with closed_port() as refusing:
        dead = f"http://127.0.0.1:{refusing}/"
        done = cli("submit", "--url", dead, "--engine", "scrapy", "--wait", env=user["env"])
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith("failed: connection_refused")


def test_wait_after_reset_and_after_retry_follows_the_new_run(user, site):
    env = user["env"]
    job_id = cli("submit", "--url", site.url_for("/catalog/"), "--engine", "scrapy",
                 "--link-selector", "li.next a", env=env).stdout.strip()  # fmt: skip
    first = cli("wait", job_id, env=env)
    assert first.returncode == 0, first.stderr
    reset = cli("reset", job_id, "--json", env=env)
    assert reset.returncode == 0 and json.loads(reset.stdout)["run"] == 2, reset.stderr
    again = cli("wait", job_id, "--json", env=env)  # not the first run's end, at once
    assert again.returncode == 0, again.stderr
    after_reset = json.loads(again.stdout)
    assert after_reset["status"] == "completed" and after_reset["run"] == 2
    assert after_reset["completed_at"] > json.loads(reset.stdout)["created_at"]
    assert after_reset["pages_crawled"] == 5
    progress = [line for line in again.stderr.splitlines() if line.startswith("running")]
    assert progress  # it followed the new run live


def test_wait_after_retry_reports_the_retried_runs_end_not_pending(user):
    env = user["env"]
    with closed_port() as refusing:
        dead = f"http://127.0.0.1:{refusing}/"
        job_id = cli("submit", "--url", dead, "--engine", "scrapy", env=env).stdout.strip()
        assert cli("wait", job_id, env=env).returncode == 1
        retried = cli("retry", job_id, "--json", env=env)
        assert retried.returncode == 0 and json.loads(retried.stdout)["status"] == "pending"
        done = cli("wait", job_id, "--json", env=env)
    assert done.returncode == 1
    final = json.loads(done.stdout)
    assert final["status"] == "failed" and final["run"] == 2 and final["attempts"] == 2, final
    assert final["error"]["type"] == "connection_refused"


def test_a_stored_login_with_an_expired_access_token_renews_itself(user):
    path = Path(user["env"]["XDG_CONFIG_HOME"]) / "scrapemaster" / "credentials.json"
    stored = json.loads(path.read_text())
    entry = stored["servers"][next(iter(stored["servers"]))]
    entry["access_token"] = "expired"
    path.write_text(json.dumps(stored))
    done = cli("whoami", env=user["env"])
    assert done.returncode == 0, done.stderr
    renewed = json.loads(path.read_text())["servers"][next(iter(stored["servers"]))]
    assert (
        renewed["access_token"] not in ("expired", "")
        and stat.S_IMODE(path.stat().st_mode) == 0o600
    )


def test_logs_follow_prints_lines_until_the_job_ends(user, site):
    submitted = cli("submit", "--url", site.url_for("/catalog/"), "--engine", "scrapy",
                    "--link-selector", "li.next a", env=user["env"])  # fmt: skip
    job_id = submitted.stdout.strip()
    done = cli("logs", job_id, "-f", env=user["env"])
    assert done.returncode == 0, done.stderr
    assert "started on scrapy" in done.stdout
    assert done.stdout.splitlines()[-1].endswith("completed: 5 pages, 5 items")


def test_schedules_and_webhooks_commands(user, site):
    env = user["env"]
    added = cli("schedules", "add", "--name", "nightly", "--cron", "0 3 * * *",
                "--url", site.url_for("/catalog/"), "--json", env=env)  # fmt: skip
    assert added.returncode == 0, added.stderr
    schedule = json.loads(added.stdout)
    assert schedule["next_run"] and schedule["job"]["url"] == site.url_for("/catalog/")
    assert schedule["id"] in cli("schedules", "list", env=env).stdout
    started = json.loads(cli("schedules", "run", schedule["id"], "--json", env=env).stdout)
    history = json.loads(
        cli("schedules", "history", "--schedule", schedule["id"], "--json", env=env).stdout
    )
    assert [r["id"] for r in history["runs"]] == [started["run_id"]]
    hook = cli("webhooks", "add", site.url_for("/hook"), env=env)
    assert hook.returncode == 0, hook.stderr
    assert "secret " in hook.stdout
    hooks = json.loads(cli("webhooks", "list", "--json", env=env).stdout)
    assert [h["webhook_url"] for h in hooks] == [site.url_for("/hook")]
