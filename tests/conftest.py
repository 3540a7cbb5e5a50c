"""Fixtures: real Redis and MongoDB-wire servers on free ports, apps, users, workers, sites."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pymongo
import pytest

from deploy import embedded
from shared.settings import Settings
from testing.helpers import Stack, redis_database, register_user
from testing.sites.server import SiteServer


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A redis-server of this test session (REDIS_TEST_URL to use another)."""
    if os.environ.get("REDIS_TEST_URL"):
        yield os.environ["REDIS_TEST_URL"]
        return
    service = embedded.start_redis(tmp_path_factory.mktemp("redis"))
    yield service.url
    service.stop()


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    """MONGO_URL when set, else an in-memory SecantusDB server of this session."""
    if os.environ.get("MONGO_URL"):
        yield os.environ["MONGO_URL"]
        return
    service = embedded.start_secantus(None)
    yield service.url
    service.stop()


@pytest.fixture
def own_redis(redis_url, tmp_path) -> Iterator[str]:
    """The URL of a Redis database of this test's own (testing/helpers.py RedisLease)."""
    with redis_database(redis_url, tmp_path) as url:
        yield url


def _db_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(redis_url, mongo_url) -> Iterator[Settings]:
    """Settings of one test: its own database, dropped afterwards."""
    s = Settings.from_env(
        {},
        env="test",
        redis_url=redis_url,
        mongo_url=mongo_url,
        mongo_db=_db_name("t"),
        rate_limit_enabled=False,
        progress_interval_seconds=0.2,
    )
    yield s
    with pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=3000) as c:
        c.drop_database(s.mongo_db)


@pytest.fixture
def db(settings):
    from shared import db as dbmod

    return dbmod.database(settings)


@pytest.fixture
def app(settings):
    from api.app import create_app

    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth(client):
    """Headers of a freshly registered user."""
    return register_user(client)


@pytest.fixture
def site() -> Iterator[SiteServer]:
    with SiteServer(pages=5, items_per_page=10) as server:
        yield server


@pytest.fixture(scope="module")
def stack(redis_url, mongo_url, tmp_path_factory) -> Iterator[Stack]:
    """A running API (gunicorn) and a scrapy worker for one test module, on their own database."""
    s = Stack(redis_url, mongo_url, _db_name("e2e"), tmp_path_factory.mktemp("stack"))
    try:
        s.start(api=True, queues=("scrapy",), JOB_STALE_SECONDS="3")
        yield s
    finally:
        s.stop()


RACE_MODULE = "test_scheduler_race.py"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under `--dist loadfile` (make test), the scheduler race's file goes out first: its test
    waits minutes on the clock (testing/scheduler_race.py) while the other workers run the rest,
    rather than starting last and adding those minutes to the run."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class RaceFirst(LoadFileScheduling):
        def _assign_work_unit(self, node):
            race = [scope for scope in self.workqueue if scope.endswith(RACE_MODULE)]
            if race:
                self.workqueue.move_to_end(race[0], last=False)
            super()._assign_work_unit(node)

    return RaceFirst(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report on the item (item.rep_call …): fixtures can tell a failed test
    (the browser tests save a screenshot then)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
