"""The documentation: the site builds strictly and offline, the configuration page is the
settings' own, and the README stays a front page."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared import settings_docs
from shared.settings import Settings, setting

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_page_is_what_the_settings_say():
    expected = settings_docs.render()
    current = (ROOT / "docs" / "configuration.md").read_text()
    assert current == expected, (
        "docs/configuration.md is out of date: run `.venv/bin/python -m shared.settings_docs`"
    )


def test_every_setting_is_on_the_configuration_page_with_its_default():
    page = (ROOT / "docs" / "configuration.md").read_text()
    for name, default in (("MAX_PAGES_CAP", "`10000`"), ("RATE_LIMIT_ENABLED", "`true`")):
        assert f"| `{name}` | {default} |" in page
    rows = set(re.findall(r"^\| `([A-Z_]+)` \|", page, re.M))
    assert {f.upper() for f in Settings.__dataclass_fields__} <= rows


def test_a_setting_without_a_description_fails_the_page():
    @dataclass(frozen=True)
    class Described:
        documented: int = setting(1, "has one")
        forgotten: int = field(default=2)

    with pytest.raises(settings_docs.UndocumentedSetting, match="FORGOTTEN"):
        settings_docs.render(Described, procfile="")


def test_a_procfile_variable_without_a_description_fails_the_page():
    procfile = "worker: celery worker -c ${SCRAPY_CONCURRENCY:-2} -c ${NEW_POOL_SIZE:-3}\n"
    with pytest.raises(settings_docs.UndocumentedSetting, match="NEW_POOL_SIZE"):
        settings_docs.render(procfile=procfile)


def test_process_counts_are_documented_as_procfile_variables_not_settings():
    page = settings_docs.render()
    processes = page[page.index("## Process counts") :]
    for name in ("SCRAPY_CONCURRENCY", "PLAYWRIGHT_CONCURRENCY", "WEBHOOK_CONCURRENCY"):
        assert f"`{name}`" in processes
        assert name.lower() not in Settings.__dataclass_fields__


def test_the_site_builds_strictly_and_loads_nothing_from_outside(tmp_path):
    out = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    pages = list(out.rglob("*.html"))
    assert len(pages) > 15
    for page in pages:
        html = page.read_text()
        # links to other sites are fine; a script, style or font fetched from one is not
        external = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(?:https?:)?//[^"]+"', html)
        assert external == [], (page.name, external)


def test_the_readme_is_a_front_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 350
    assert "make run" in readme and "make test" in readme
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).exists(), link


def test_the_documented_job_defaults_and_ranges_are_those_of_the_code():
    from shared.jobspec import BOUNDS, DEFAULT_CONFIG

    guide = (ROOT / "docs" / "guide" / "jobs.md").read_text()
    for option, (low, high) in BOUNDS.items():
        row = re.search(rf"^\| `{option}` \| (\w+) \| (\d+) to (.*?) \|", guide, re.M)
        assert row, option
        default, low_shown, high_shown = row.groups()
        assert default == (
            "none" if DEFAULT_CONFIG[option] is None else f"{DEFAULT_CONFIG[option]:g}"
        )
        assert int(low_shown) == low, option
        # a bound a setting moves is shown as that setting with its default
        assert re.match(rf"(`[A-Z_]+` \(default )?{int(high)}\b", high_shown), (option, high_shown)
    reference = (ROOT / "docs" / "api.md").read_text()
    for option, default in re.findall(r'"(\w+)": [^/\n]*//[^\n]*\bdefault (\w+)', reference):
        if option in DEFAULT_CONFIG:
            assert default == str(DEFAULT_CONFIG[option]), (option, default)
