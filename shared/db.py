"""MongoDB access: one client per process (re-made after fork) and the collections' indexes."""

from __future__ import annotations

import os
import threading

import pymongo
from pymongo.database import Database

from shared.settings import Settings, get_settings

_lock = threading.Lock()
_clients: dict[tuple[int, str], pymongo.MongoClient] = {}


def client(settings: Settings | None = None) -> pymongo.MongoClient:
    """The MongoClient of this process; pymongo is not fork-safe, so each pid gets its own."""
    settings = settings or get_settings()
    key = (os.getpid(), settings.effective_mongo_url)
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(key)
        if found is None:
            found = pymongo.MongoClient(
                settings.effective_mongo_url,
                serverSelectionTimeoutMS=int(settings.mongo_timeout_seconds * 1000),
                connectTimeoutMS=int(settings.mongo_timeout_seconds * 1000),
                socketTimeoutMS=int(settings.mongo_socket_timeout_seconds * 1000),
                tz_aware=True,
                appname="scrapemaster",
            )
            _clients[key] = found
        return found


def database(settings: Settings | None = None) -> Database:
    """The application database named by MONGO_DB."""
    settings = settings or get_settings()
    return client(settings)[settings.mongo_db]


def close_all() -> None:
    """Close this process's clients (after tests, at shutdown)."""
    with _lock:
        for (pid, _), c in list(_clients.items()):
            if pid == os.getpid():
                c.close()
        _clients.clear()


def ensure_indexes(db: Database) -> None:
    """Create every index the service relies on; idempotent, run at API and worker start."""
    from shared import accounts
    from shared.users import ApiKeyRepository

    accounts.migrate(db)  # the users' indexes; usernames unique whatever their case
    ApiKeyRepository(db).ensure_indexes()
    # every index costs on every write of a job (the embedded store rewrites all of a
    # document's index entries on each update), so only these:
    for obsolete in ("owner_id_1_created_at_-1", "status_1_created_at_-1", "status_1_updated_at_1"):
        if obsolete in db.jobs.index_information():
            db.jobs.drop_index(obsolete)
    # listings walk windows of these (shared/listing.py); the reconciler reads the last
    db.jobs.create_index([("owner_id", 1), ("seq", 1)])
    db.jobs.create_index([("owner_id", 1), ("status", 1), ("seq", 1)])
    db.jobs.create_index([("owner_id", 1), ("schedule_id", 1), ("seq", 1)])
    db.jobs.create_index("created_at")
    db.usage.create_index([("day", 1), ("owner_id", 1)])  # shared/usage.py
    db.usage.create_index([("owner_id", 1), ("day", 1)])
    db.jobs.create_index([("status", 1), ("resend_at", 1)])
    db.jobs.create_index("unsent", sparse=True)
    db.jobs.create_index("unsettled", sparse=True)
    db.jobs.create_index("outbox_pending", sparse=True)  # events not yet published
    db.results.create_index([("job_id", 1), ("first", 1)])
    db.logs.create_index([("job_id", 1), ("timestamp", 1)])
    db.proxies.create_index("url", unique=True)
    db.deleted_jobs.create_index("deleted_at")
    db.webhooks.create_index([("owner_id", 1), ("created_at", -1)])
    db.webhook_deliveries.create_index([("webhook_id", 1), ("timestamp", -1)])
    db.webhook_deliveries.create_index("timestamp")  # retention
    db.proxies.create_index([("status", 1), ("last_used_at", 1)])
    db.jobs.create_index([("schedule_id", 1), ("status", 1)])
    db.schedules.create_index([("owner_id", 1), ("created_at", -1)])
    db.schedules.create_index([("enabled", 1), ("next_run", 1)])
    # one run per (schedule, slot): whoever inserts it first starts the job
    db.schedule_runs.create_index([("schedule_id", 1), ("slot", 1)], unique=True)
    db.schedule_runs.create_index([("owner_id", 1), ("scheduled_for", -1)])
    db.schedule_runs.create_index([("schedule_id", 1), ("scheduled_for", -1)])
    db.schedule_runs.create_index([("status", 1), ("job_created", 1)])
    db.schedule_runs.create_index("job_id")
    db.schedule_changes.create_index([("run_id", 1), ("kind", 1), ("key", 1)])
    from shared import counters, items, run_history
    from shared.eggs import EggStore
    from shared.files import JobFiles

    JobFiles(db).ensure_indexes()
    EggStore(db).ensure_indexes()

    items.migrate(db)
    counters.migrate(db)
    run_history.migrate(db)


def ping(settings: Settings | None = None, timeout_ms: int = 1000) -> bool:
    """True when the MongoDB server answers within `timeout_ms`."""
    settings = settings or get_settings()
    try:
        probe: pymongo.MongoClient
        with pymongo.MongoClient(
            settings.effective_mongo_url,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
        ) as probe:
            probe.admin.command("ping")
        return True
    except pymongo.errors.PyMongoError:
        return False
