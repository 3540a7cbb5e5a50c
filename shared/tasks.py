"""Names of Celery tasks and queues: the API sends by name, so it never imports the workers."""

from collections.abc import Mapping
from typing import Any

SCRAPE = "scrapemaster.scrape"
RECONCILE = "scrapemaster.reconcile"
CHECK_PROXIES = "scrapemaster.check_proxies"
DELIVER_WEBHOOK = "scrapemaster.deliver_webhook"
PREVIEW = "scrapemaster.preview"

QUEUE_SCRAPY = "scrapy"
QUEUE_PLAYWRIGHT = "playwright"
QUEUE_MAINTENANCE = "maintenance"
QUEUE_WEBHOOKS = "webhooks"
QUEUE_SPIDERS = "spiders"  # users' own Scrapy spiders (engine "spider"), each in a sandbox
QUEUES = (QUEUE_SCRAPY, QUEUE_PLAYWRIGHT, QUEUE_MAINTENANCE, QUEUE_WEBHOOKS, QUEUE_SPIDERS)
SCRAPE_QUEUES = (QUEUE_SCRAPY, QUEUE_PLAYWRIGHT, QUEUE_SPIDERS)
ENGINE_QUEUES = {"playwright": QUEUE_PLAYWRIGHT, "spider": QUEUE_SPIDERS}  # else scrapy
QUEUE_ENGINES = {QUEUE_PLAYWRIGHT: "playwright", QUEUE_SPIDERS: "spider"}  # else scrapy


def engine_of_queue(queue: str) -> str:
    """The engine that runs the jobs taken from `queue`."""
    return QUEUE_ENGINES.get(queue, "scrapy")


CHECK_COUNTERS = "scrapemaster.check_counters"
APPLY_RETENTION = "scrapemaster.apply_retention"


def celery_priority(job_priority: int) -> int:
    """Kombu's Redis transport serves 0 first, so the job's 9 (highest) becomes 0."""
    return 9 - max(0, min(9, job_priority))


def broker_transport_options(max_timeout_seconds: int) -> dict:
    """Redis transport options; API and workers must agree on the priority steps."""
    return {
        # A task is re-delivered if not acknowledged within this time: longer than any job.
        "visibility_timeout": max_timeout_seconds + 900,
        "priority_steps": list(range(10)),
        "sep": ":",
        "queue_order_strategy": "priority",
        # a stalled Redis must not freeze a worker or the API: fail, reconnect, retry
        "socket_connect_timeout": 5,
        "socket_timeout": 30,
    }


def scrape_options(job: Mapping[str, Any]) -> dict[str, Any]:
    """send_task keyword arguments of a job's scrape task: the API and the workers both use it."""
    engine = job.get("engine", "auto")
    return {
        "args": [job["_id"]],
        "queue": job.get("queue") or ENGINE_QUEUES.get(engine, QUEUE_SCRAPY),
        "priority": celery_priority(int(job.get("priority", 5))),
    }


def webhook_options(attempt_id: str, delay: float = 0) -> dict:
    """send_task keyword arguments of a webhook attempt (API and workers send them)."""
    return {"args": [attempt_id], "queue": QUEUE_WEBHOOKS, "countdown": delay or None}


def queue_lists(queue: str) -> list[str]:
    """The Redis lists of one queue: kombu keeps one per priority step (`q`, `q:1` … `q:9`)."""
    return [queue] + [f"{queue}:{step}" for step in range(1, 10)]


def queue_depths(client, queues: tuple[str, ...] = QUEUES) -> dict[str, int]:
    """Messages waiting per queue (a `redis.Redis`; LLEN only: nothing grows with the queue)."""
    pipe = client.pipeline()
    for queue in queues:
        for name in queue_lists(queue):
            pipe.llen(name)
    lengths = iter(pipe.execute())
    return {queue: sum(next(lengths) for _ in range(10)) for queue in queues}


def preview_options(preview_id: str, body: dict, engine: str, wait_seconds: float) -> dict:
    """send_task keyword arguments of a selector preview: on the engine's queue, ahead of every
    job (a person waits for it), dropped unless a worker takes it within `wait_seconds`."""
    return {
        "args": [preview_id, body, engine],
        "queue": QUEUE_PLAYWRIGHT if engine == "playwright" else QUEUE_SCRAPY,
        "priority": celery_priority(9),
        "expires": max(1.0, wait_seconds),
    }
