"""Job counters against a recount, and listings in windows, on the real MongoDB wire server."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest

from shared import jobs
from shared.counters import JobCounters, migrate
from shared.jobs import JobRepository
from shared.listing import JobListing
from testing.helpers import register_user

pytestmark = pytest.mark.integration

SPEC = {"url": "http://127.0.0.1:9/", "selectors": {"t": "h1::text"}}


def _stored(db) -> dict:
    """Counter cells as stored, without empty cells."""
    return {
        str(doc["_id"]): {
            key: {f: n for f, n in cell.items() if n} for key, cell in doc.get("k", {}).items()
        }
        for doc in db.job_counters.find({})
    }


def _counted(db) -> dict:
    return {
        owner: {key: {f: n for f, n in cell.items() if n} for key, cell in found["k"].items()}
        for owner, found in JobCounters(db).recount(jobs.now()).items()
    }


def _same(db) -> bool:
    stored = {o: {k: c for k, c in cells.items() if c} for o, cells in _stored(db).items()}
    counted = {o: {k: c for k, c in cells.items() if c} for o, cells in _counted(db).items()}
    return {o: c for o, c in stored.items() if c} == {o: c for o, c in counted.items() if c}


def _life(repo: JobRepository, job_id: str, rng: random.Random) -> None:
    """One job's random walk through the state machine, as workers and users would race it."""
    for _ in range(6):
        action = rng.choice(["claim", "complete", "fail", "cancel", "retry", "reset", "delete"])
        if action == "delete":
            repo.delete(job_id, active=True)
            return
        if action in ("complete", "fail"):
            job = repo.get(job_id)
            if job is None or job["status"] != jobs.RUNNING:
                continue
            figures = {"items_scraped": rng.randint(0, 50), "pages_crawled": rng.randint(1, 5)}
            repo.finish(job_id, action, job["run_id"], current=job, **figures)
            continue
        repo.transition(job_id, action, progress=0)


def test_counters_stay_exact_under_racing_transitions_retries_and_deletes(db):
    repo = JobRepository(db)
    owners = ["alice", "bob"]
    made = [
        repo.create(owners[i % 2], {**SPEC, "engine": ["auto", "scrapy"][i % 2]})["_id"]
        for i in range(40)
    ]

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        mine = JobRepository(db)
        for job_id in rng.sample(made, len(made)):
            _life(mine, job_id, rng)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads)
    assert _same(db), (_stored(db), _counted(db))
    # what the API reads: totals per owner equal a plain count
    for owner in owners:
        listing = JobListing(db)
        assert listing.total(owner, {}) == db.jobs.count_documents({"owner_id": owner})
        for status in jobs.STATUSES:
            assert listing.total(owner, {"status": status}) == db.jobs.count_documents(
                {"owner_id": owner, "status": status}
            )


def test_finished_items_are_counted_and_running_ones_added_live(db):
    repo = JobRepository(db)
    counters = JobCounters(db)
    job = repo.create("carol", SPEC)
    claimed = repo.transition(job["_id"], "claim")
    db.jobs.update_one({"_id": job["_id"]}, {"$set": {"items_scraped": 7}})  # a sink's progress
    assert counters.stored_items("carol") == 7
    repo.finish(job["_id"], "complete", claimed["run_id"], items_scraped=9, pages_crawled=1)
    assert counters.stored_items("carol") == 9
    repo.transition(job["_id"], "reset", items_scraped=0, pages_crawled=0)
    assert counters.stored_items("carol") == 0
    assert _same(db)


def test_a_write_that_bypassed_the_counters_is_repaired(db):
    repo = JobRepository(db)
    job = repo.create("dave", SPEC)
    db.jobs.update_one({"_id": job["_id"]}, {"$set": {"status": "completed"}})  # "crashed"
    assert not _same(db)
    corrected = JobCounters(db).repair(jobs.now(), settle_seconds=0)
    assert corrected == ["dave"] and _same(db)
    assert JobCounters(db).repair(jobs.now(), settle_seconds=0) == []


def test_a_repair_yields_to_a_transition_that_moved_the_counter(db):
    repo = JobRepository(db)
    job = repo.create("erin", SPEC)
    db.jobs.update_one({"_id": job["_id"]}, {"$set": {"status": "failed"}})
    counters = JobCounters(db)
    original = counters.recount

    def recount_then_transition(now, owner_id=None):
        found = original(now, owner_id)
        repo.create("erin", SPEC)  # moves the counter while the recount is in hand
        return found

    counters.recount = recount_then_transition  # type: ignore[method-assign]
    assert counters.repair(jobs.now(), settle_seconds=0) == []
    counters.recount = original  # type: ignore[method-assign]
    assert counters.repair(jobs.now(), settle_seconds=0) == ["erin"] and _same(db)


def test_listing_walks_windows_over_gaps_filters_and_cursors(db):
    repo = JobRepository(db)
    made = [repo.create("frank", SPEC)["_id"] for _ in range(120)]
    repo.create("grace", SPEC)  # someone else's never shows
    for job_id in made[20:90]:  # a wide gap in the middle
        if job_id not in made[40:42]:
            repo.delete(job_id)
    for job_id in made[100:110]:
        repo.transition(job_id, "cancel")
    left = [j for j in made if j not in made[20:90] or j in made[40:42]]
    newest_first = list(reversed(left))
    listing = JobListing(db)

    def ids(page):
        return [job["_id"] for job in page.jobs]

    page = listing.page("frank", {}, limit=25)
    assert page.total == len(left) and ids(page) == newest_first[:25] and page.more_after
    # keyset: follow `after` to the end, then walk back with `before`
    seen, cursor = ids(page), page.jobs[-1]["_id"]
    while True:
        page = listing.page("frank", {}, limit=25, after=cursor)
        seen += ids(page)
        if not page.more_after:
            break
        cursor = page.jobs[-1]["_id"]
    assert seen == newest_first
    back = listing.page("frank", {}, limit=25, before=newest_first[25])
    assert ids(back) == newest_first[:25]
    # skip (also read from the far end), ascending order, a filter
    assert ids(listing.page("frank", {}, skip=40, limit=10)) == newest_first[40:50]
    assert ids(listing.page("frank", {}, skip=len(left) - 3, limit=10)) == newest_first[-3:]
    assert ids(listing.page("frank", {}, descending=False, limit=5)) == left[:5]
    cancelled = listing.page("frank", {"status": "cancelled"}, limit=50)
    assert cancelled.total == 10 and ids(cancelled) == list(reversed(made[100:110]))


def test_admin_listing_walks_time_windows_over_every_owner(db):
    repo = JobRepository(db)
    made = [repo.create(["h1", "h2", "h3"][i % 3], SPEC)["_id"] for i in range(30)]
    listing = JobListing(db)
    page = listing.page(None, {}, limit=10)
    assert page.total == 30
    assert [j["_id"] for j in page.jobs] == list(reversed(made))[:10]
    rest = listing.page(None, {}, limit=50, after=page.jobs[-1]["_id"])
    assert [j["_id"] for j in rest.jobs] == list(reversed(made))[10:]


def test_jobs_from_before_counters_are_numbered_and_counted_once(db):
    old = jobs.now() - timedelta(days=3)
    db.jobs.insert_many(
        [
            {
                "_id": f"legacy{i}",
                "owner_id": "ivan",
                "engine": "scrapy",
                "status": "completed",
                "items_scraped": 4,
                "pages_crawled": 1,
                "created_at": old + timedelta(minutes=i),
            }
            for i in range(5)
        ]
    )
    migrate(db)
    numbered = sorted(db.jobs.find({"owner_id": "ivan"}), key=lambda j: j["seq"])
    assert [j["_id"] for j in numbered] == [f"legacy{i}" for i in range(5)]
    assert JobCounters(db).stored_items("ivan") == 20 and _same(db)
    migrate(db)  # once per store
    assert JobCounters(db).stored_items("ivan") == 20
    assert [j["_id"] for j in JobListing(db).page("ivan", {}, limit=2).jobs] == [
        "legacy4",
        "legacy3",
    ]


def test_stats_and_monitoring_read_the_counters(client, db):
    auth = register_user(client)
    ids = [client.post("/api/v1/jobs", json=SPEC, headers=auth).get_json()["id"] for _ in range(3)]
    client.post(f"/api/v1/jobs/{ids[0]}/cancel", headers=auth)
    client.delete(f"/api/v1/jobs/{ids[1]}", headers=auth)
    stats = client.get("/api/v1/jobs/stats", headers=auth).get_json()
    assert stats == {
        "total": 2,
        "pending": 1,
        "running": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 1,
    }
    monitoring = client.get("/api/v1/monitoring/stats", headers=auth).get_json()
    assert monitoring["jobs_last_24h"] == 2 and monitoring["total_jobs"] == 2
    listed = client.get("/api/v1/jobs", headers=auth)
    assert listed.headers["X-Total-Count"] == "2"
    bad = client.get(f"/api/v1/jobs?after={ids[1]}", headers=auth)
    assert bad.status_code == 422 and "after" in bad.get_json()["errors"]
