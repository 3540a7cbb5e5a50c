"""The scheduler's decisions with an injected clock: DST both ways, misfires, overlap, enabling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared import changes
from shared.schedules import (
    MISSED,
    MISSED_ROWS_KEPT,
    SKIPPED,
    STARTED,
    ScheduleError,
    check,
    missed_reason,
    next_run,
    plan,
)

NEW_YORK = ZoneInfo("America/New_York")


def schedule(cron: str, tz: str = "UTC", created: datetime | None = None, **extra) -> dict:
    doc = {"cron": cron, "timezone": tz, "enabled": True, "overlap": "skip", **extra}
    doc["next_run"] = next_run(doc, created) if created else None
    return doc


def simulate(doc: dict, start: datetime, end: datetime, step=timedelta(seconds=20)) -> list:
    """Tick every `step` from `start` to `end` as the scheduler does; the slots started."""
    started = []
    clock = start
    while clock <= end:
        decided = plan(doc, clock, misfire_seconds=300, busy=False)
        if decided is not None:
            started += [slot for slot, status in decided.runs if status == STARTED]
            doc["next_run"] = decided.next_run
        clock += step
    return started


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


def test_spring_forward_a_slot_in_the_skipped_hour_fires_once_right_after_the_jump():
    # 2026-03-08 in New York: 02:00 EST becomes 03:00 EDT; 02:30 does not exist that day
    doc = schedule("30 2 * * *", "America/New_York", created=local(2026, 3, 7, 12, 0))
    fired = simulate(doc, local(2026, 3, 7, 12, 0).astimezone(UTC), local(2026, 3, 9, 12, 0))
    assert [f.astimezone(NEW_YORK) for f in fired] == [
        local(2026, 3, 8, 3, 0),  # once, at the jump
        local(2026, 3, 9, 2, 30),
    ]


def test_fall_back_a_slot_in_the_repeated_hour_fires_once():
    # 2026-11-01 in New York: 01:00-02:00 happens twice (EDT, then EST)
    doc = schedule("30 1 * * *", "America/New_York", created=local(2026, 10, 31, 12, 0))
    fired = simulate(doc, local(2026, 10, 31, 12, 0).astimezone(UTC), local(2026, 11, 2, 12, 0))
    assert [f.isoformat() for f in fired] == [
        "2026-11-01T05:30:00+00:00",  # 01:30 EDT, the first of the two 01:30s
        "2026-11-02T06:30:00+00:00",  # 01:30 EST
    ]


def test_a_minute_schedule_ticked_often_fires_once_per_minute():
    start = datetime(2026, 11, 24, 10, 0, 5, tzinfo=UTC)
    doc = schedule("* * * * *", created=start)
    fired = simulate(doc, start, start + timedelta(minutes=5), step=timedelta(seconds=1))
    assert fired == [datetime(2026, 11, 24, 10, m, tzinfo=UTC) for m in range(1, 6)]


def test_after_downtime_the_latest_slot_within_the_window_fires_and_older_ones_are_missed():
    doc = schedule("* * * * *")
    doc["next_run"] = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    now = datetime(2026, 11, 24, 12, 10, 30, tzinfo=UTC)
    decided = plan(doc, now, misfire_seconds=300, busy=False)
    assert decided is not None
    assert decided.runs[-1] == (datetime(2026, 11, 24, 12, 10, tzinfo=UTC), STARTED)
    missed = [slot for slot, status in decided.runs if status == MISSED]
    assert missed == [datetime(2026, 11, 24, 12, m, tzinfo=UTC) for m in range(10)]
    assert [s for s in decided.runs if s[1] == STARTED] == [decided.runs[-1]]  # no burst
    assert decided.next_run == datetime(2026, 11, 24, 12, 11, tzinfo=UTC)


def test_a_missed_slot_says_truthfully_why_it_did_not_run():
    doc = schedule("* * * * *")
    doc["next_run"] = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    now = datetime(2026, 11, 24, 12, 10, 30, tzinfo=UTC)
    decided = plan(doc, now, misfire_seconds=300, busy=False)
    assert decided is not None
    reasons = {
        slot.minute: missed_reason(slot, now, 300)
        for slot, status in decided.runs
        if status == MISSED
    }
    for minute in range(6):  # 5.5 minutes old and more: past the window
        assert "misfire window of 300 s passed" in reasons[minute], minute
    for minute in range(6, 10):  # 30 s to 4.5 minutes old: within it, passed over for 12:10
        assert "misfire window" not in reasons[minute], minute
        assert "only the latest slot runs" in reasons[minute], minute


def test_a_slot_older_than_the_misfire_window_is_missed_not_run():
    doc = schedule("0 9 * * *")
    doc["next_run"] = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    decided = plan(doc, datetime(2026, 11, 24, 9, 5, 1, tzinfo=UTC), 300, busy=False)
    assert decided is not None and decided.runs == [(doc["next_run"], MISSED)]
    assert decided.next_run == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    on_time = plan(doc, datetime(2026, 11, 24, 9, 4, 59, tzinfo=UTC), 300, busy=False)
    assert on_time is not None and on_time.runs == [(doc["next_run"], STARTED)]


def test_a_month_of_downtime_records_only_the_newest_missed_slots():
    doc = schedule("* * * * *")
    doc["next_run"] = datetime(2026, 10, 24, 0, 0, tzinfo=UTC)
    now = datetime(2026, 11, 24, 0, 0, 10, tzinfo=UTC)
    decided = plan(doc, now, 300, busy=False)
    assert decided is not None and decided.missed_uncounted
    assert len(decided.runs) == MISSED_ROWS_KEPT + 1
    assert decided.runs[-1] == (datetime(2026, 11, 24, 0, 0, tzinfo=UTC), STARTED)


def test_overlap_skip_records_a_skipped_run_while_the_previous_job_is_busy():
    due = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    now = due + timedelta(seconds=1)
    for overlap, busy, expected in [
        ("skip", True, SKIPPED),
        ("skip", False, STARTED),
        ("allow", True, STARTED),
    ]:
        doc = {**schedule("* * * * *", overlap=overlap), "next_run": due}
        decided = plan(doc, now, 300, busy=busy)
        assert decided is not None and decided.runs == [(due, expected)], overlap


def test_nothing_is_due_before_next_run_or_while_disabled():
    doc = schedule("* * * * *", created=datetime(2026, 11, 24, 12, 0, 30, tzinfo=UTC))
    assert plan(doc, datetime(2026, 11, 24, 12, 0, 59, tzinfo=UTC), 300, busy=False) is None
    disabled = {**doc, "enabled": False}
    assert next_run(disabled, datetime(2026, 11, 24, tzinfo=UTC)) is None
    assert plan(disabled, datetime(2026, 11, 25, tzinfo=UTC), 300, busy=False) is None
    # enabling again counts from then on: the slots while disabled are not misfires
    enabled_at = datetime(2026, 11, 25, 8, 0, 20, tzinfo=UTC)
    assert next_run({**disabled, "enabled": True}, enabled_at) == datetime(
        2026, 11, 25, 8, 1, tzinfo=UTC
    )


def test_next_run_is_computed_in_the_schedules_time_zone():
    doc = {"cron": "0 9 * * *", "timezone": "Europe/Berlin", "enabled": True}
    summer = next_run(doc, datetime(2026, 7, 1, 10, 0, tzinfo=UTC))
    winter = next_run(doc, datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    assert summer == datetime(2026, 7, 2, 7, 0, tzinfo=UTC)  # 09:00 CEST
    assert winter == datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # 09:00 CET


@pytest.mark.parametrize(
    ("cron", "tz", "field"),
    [
        ("61 * * * *", "UTC", "cron"),
        ("* * * * * *", "UTC", "cron"),  # every second
        ("0 0 30 2 *", "UTC", "cron"),  # never comes
        ("not cron", "UTC", "cron"),
        ("* * * * *", "Mars/Base", "timezone"),
        ("* * * * *", "../../etc/passwd", "timezone"),
    ],
)
def test_unusable_cron_or_time_zone_names_its_field(cron, tz, field):
    with pytest.raises(ScheduleError) as raised:
        check(cron, tz, 60, datetime(2026, 11, 24, tzinfo=UTC))
    assert raised.value.field == field


def test_the_minimum_interval_applies_to_the_closest_two_slots():
    now = datetime(2026, 11, 24, tzinfo=UTC)
    check("*/5 * * * *", "UTC", 300, now)
    with pytest.raises(ScheduleError, match="minimum interval is 300"):
        check("*/2 * * * *", "UTC", 300, now)
    with pytest.raises(ScheduleError):
        check("0,1 12 * * *", "UTC", 300, now)  # 12:00 and 12:01: too close once a day


def test_item_identity_uses_the_key_field_else_the_whole_item():
    a = {"sku": "A1", "price": "10"}
    assert changes.identity(a, "sku")[0] == "A1"
    assert changes.identity(a, "sku")[1] != changes.identity({**a, "price": "11"}, "sku")[1]
    assert changes.identity(a, "sku")[0] == changes.identity({**a, "price": "11"}, "sku")[0]
    # no key (or the item lacks it): a changed item is a different item
    assert changes.identity(a, None)[0] != changes.identity({**a, "price": "11"}, None)[0]
    assert changes.identity({"price": "1"}, "sku")[0].startswith("#")
    # field order does not matter
    assert changes.identity({"b": 1, "a": 2}, None) == changes.identity({"a": 2, "b": 1}, None)
