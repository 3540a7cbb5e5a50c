"""The job state machine: one table decides every status change."""

from __future__ import annotations

import pytest

from shared import jobs
from shared.jobs import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING, STATUSES

ALLOWED = {
    ("claim", PENDING): RUNNING,
    ("complete", RUNNING): COMPLETED,
    ("fail", RUNNING): FAILED,
    ("cancel", PENDING): CANCELLED,
    ("cancel", RUNNING): CANCELLED,
    ("retry", FAILED): PENDING,
    ("retry", CANCELLED): PENDING,
    ("reset", COMPLETED): PENDING,
    ("reset", FAILED): PENDING,
    ("reset", CANCELLED): PENDING,
}


@pytest.mark.parametrize("action", ["claim", "complete", "fail", "cancel", "retry", "reset"])
@pytest.mark.parametrize("status", STATUSES)
def test_user_visible_transitions_match_the_contract(action, status):
    expected = ALLOWED.get((action, status))
    assert jobs.allowed(action, status) is (expected is not None)
    if expected:
        assert jobs.target(action) == expected


def test_terminal_states_only_leave_through_retry_or_reset():
    for status in jobs.TERMINAL:
        leaving = {a for a in jobs.TRANSITIONS if jobs.allowed(a, status)}
        assert leaving <= {"retry", "reset"}


@pytest.mark.parametrize(
    ("given", "expected"), [("low", 2), ("normal", 5), ("high", 8), (0, 0), (9, 9), (None, 5)]
)
def test_priority_names_and_numbers(given, expected):
    assert jobs.normalize_priority(given) == expected


@pytest.mark.parametrize("bad", ["urgent", 10, -1, True])
def test_bad_priorities_are_refused(bad):
    with pytest.raises(ValueError):
        jobs.normalize_priority(bad)


def test_auto_and_scrapy_start_on_the_scrapy_queue_spiders_on_their_own():
    queues = {e: jobs.queue_for(e) for e in jobs.ENGINES}
    assert queues == {
        "auto": "scrapy",
        "scrapy": "scrapy",
        "playwright": "playwright",
        "spider": "spiders",
    }


def test_an_event_written_with_a_transition_is_counted_into_the_outbox():
    from shared import events, outbox

    event = outbox.fields(events.COMPLETED, {"status": COMPLETED})
    update = jobs._update_for("retry", {"error": None, **event})
    assert update["$inc"] == {"attempts": 1, "run": 1, "outbox_pending": 1}
    (key,) = (name.split(".", 1)[1] for name in event)
    after = jobs.apply_update({"_id": "j", "outbox": {"older": {}}, "attempts": 1}, update)
    assert set(after["outbox"]) == {"older", key} and after["outbox_pending"] == 1
    assert after["outbox"][key]["type"] == events.COMPLETED and after["attempts"] == 2
    assert "$inc" not in jobs._update_for("complete", {"progress": 100})


def test_outbox_events_keep_the_order_they_were_written_in():
    from shared import events, outbox

    first, second = (outbox.fields(events.STARTED, {}), outbox.fields(events.COMPLETED, {}))
    (a,), (b,) = first.values(), second.values()
    assert a["seq"] < b["seq"] and a["timestamp"] <= b["timestamp"]
