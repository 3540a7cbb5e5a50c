"""The Redis lists that KEDA's ScaledObjects (deploy/k8s) and /monitoring/queues count are the
lists kombu really writes a job's task to, at every priority."""

from __future__ import annotations

import pytest
import redis

from shared import tasks
from shared.settings import Settings
from tests.unit.test_k8s import WORKER_QUEUES, by_kind

pytestmark = pytest.mark.integration


def test_every_priority_of_a_queue_lands_in_a_list_the_scaler_counts(own_redis):
    from workers.app import create_celery

    url = own_redis
    client = redis.Redis.from_url(url)
    client.flushdb()
    app = create_celery(Settings.from_env({}, env="test", redis_url=url))
    try:
        for queue in WORKER_QUEUES:
            for priority in range(10):  # a job's 0-9, sent as the API sends it
                options = tasks.scrape_options({"_id": "j", "priority": priority, "queue": queue})
                app.send_task(tasks.SCRAPE, **options)
        written = {key.decode() for key in client.keys("*") if client.type(key) == b"list"}
        watched = {
            trigger["metadata"]["listName"]
            for scaled in by_kind("ScaledObject").values()
            for trigger in scaled["spec"]["triggers"]
        }
        assert written <= watched, written - watched
        for queue in WORKER_QUEUES:
            lists = [
                t["metadata"]["listName"]
                for t in by_kind("ScaledObject")[f"worker-{queue}"]["spec"]["triggers"]
            ]
            assert sum(client.llen(name) for name in lists) == 10, queue
    finally:
        app.close()
        client.flushdb()
