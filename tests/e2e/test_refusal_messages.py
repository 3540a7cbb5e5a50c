"""A refused target names the real cause in a failed job, on real workers in local mode
(PRIVATE_TARGETS=allow): the service's own port, not the private-target setting."""

from __future__ import annotations

import uuid

import pytest
import requests

from shared import tasks
from shared.jobs import JobRepository
from testing.helpers import Stack

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def local(redis_url, mongo_url, tmp_path_factory):
    stack = Stack(redis_url, mongo_url, f"rm_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("rm"))
    try:
        stack.start(api=True, queues=("scrapy",))  # ENV=test: private targets allowed
        yield stack
    finally:
        stack.stop()


def test_a_job_aimed_at_the_services_own_port_fails_saying_so(local):
    headers = local.register()
    own = f"http://localhost:{local.port}/api/v1/health"
    refused = requests.post(local.url("/jobs"), json={"url": own}, headers=headers, timeout=10)
    assert refused.status_code == 422
    assert "port of this ScrapeMaster service itself" in refused.json()["errors"]["url"][0]
    # a name the API cannot judge up front (as a redirect or a link would be): the worker does
    me = requests.get(local.url("/auth/me"), headers=headers, timeout=10).json()
    job = JobRepository(local.database()).create(
        me["id"], {"url": own, "engine": "scrapy", "config": {"obey_robots": False}}
    )
    local.celery().send_task(tasks.SCRAPE, **tasks.scrape_options(job))
    done = local.wait_job(job["_id"], headers)
    assert done["status"] == "failed" and done["error"]["type"] == "blocked_target", done
    message = done["error"]["message"]
    assert "port of this ScrapeMaster service itself" in message
    assert "PRIVATE_TARGETS=block" not in message
