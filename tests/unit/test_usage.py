"""Metering a job's transitions (shared/usage.py meter): what each transition adds, so a
retried or taken-over run is counted as documented (pages once per fetch, items once per
stored item), and the quotas in force."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.settings import Settings
from shared.usage import job_update, meter, month_of, quotas_of


def job(status: str, pages: int = 0, items: int = 0, **more) -> dict:
    return {"status": status, "pages_crawled": pages, "items_scraped": items, **more}


def test_a_run_meters_its_pages_and_items_when_it_ends():
    claim = meter(job("pending"), job("running", run_id="r1"))
    assert claim == {}
    # progress writes happen outside transitions; the end meters the run's final figures
    end = meter(job("running", 3, 20, run_id="r1"), job("completed", 5, 50, run_id="r1"))
    assert end == {"pages": 5, "items": 50}


def test_a_retry_meters_the_pages_again_but_not_the_items_kept():
    first = job("failed", 4, 40, run_id="r1", usage_items=40)
    assert meter(first, job("pending", 4, 40, usage_items=40)) == {}  # retry
    rerun = meter(
        job("running", 1, 40, run_id="r2", usage_items=40),
        job("completed", 6, 60, run_id="r2", usage_items=40),
    )
    assert rerun == {"pages": 6, "items": 20}


def test_a_take_over_meters_what_the_dead_run_recorded():
    dead = job("running", 3, 30, run_id="dead", browser_seconds=12.5)
    assert meter(dead, job("running", 3, 30, run_id="new")) == {
        "pages": 3,
        "browser_seconds": 12.5,
    }


def test_a_cancelled_runs_final_counters_add_only_what_the_cancel_did_not_meter():
    cancelled = job("cancelled", 2, 20, usage_items=20)
    settled = job("cancelled", 5, 50, usage_items=20)
    assert meter(cancelled, settled) == {"pages": 3, "items": 30}


def test_a_reset_starts_the_items_afresh():
    before = job("completed", 5, 50, epoch=0, usage_items=50)
    after = job("pending", 0, 0, epoch=1, usage_items=50)
    delta = meter(before, after)
    assert delta == {}
    assert job_update(before, after, delta) == ({}, {"usage_items": 0})


def test_quotas_own_over_defaults_zero_and_empty_unlimited():
    settings = Settings.from_env({"QUOTA_PAGES_PER_MONTH": "100", "QUOTA_STORAGE_BYTES": ""})
    assert settings.quota_storage_bytes == 0
    assert quotas_of({}, settings).as_dict() == {
        "concurrent_jobs": None,
        "pages_per_month": 100,
        "browser_minutes_per_month": None,
        "storage_bytes": None,
    }
    own = quotas_of({"quotas": {"pages_per_month": 0, "concurrent_jobs": 2}}, settings)
    assert own.pages_per_month is None and own.concurrent_jobs == 2


def test_months_are_utc_calendar_months():
    start, end = month_of(datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert (start, end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
