"""The workload: catalog jobs submitted over the API, waited for and audited in the store.

Every job crawls the site's whole catalog page after page, so each one must end `completed`
with exactly pages × items_per_page items, each SKU once, and one "completed" line in its log.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pymongo
import requests

from shared import items


def host_of(worker: str | None) -> str:
    """`scrapy@worker-2:1234` (node@host:pid, written by the claim) → `worker-2`."""
    if not worker or "@" not in worker:
        return "?"
    return worker.split("@", 1)[1].rsplit(":", 1)[0]


@dataclass
class Audit:
    jobs: int = 0
    completed: int = 0
    not_completed: list[str] = field(default_factory=list)
    items_expected: int = 0
    items_stored: int = 0
    duplicates: int = 0
    missing: int = 0
    finals_not_one: int = 0
    by_host: Counter = field(default_factory=Counter)
    host_of_job: dict[str, str] = field(default_factory=dict)
    first_created: datetime | None = None
    last_completed: datetime | None = None

    @property
    def exactly_once(self) -> bool:
        return (
            self.completed == self.jobs
            and not self.duplicates
            and not self.missing
            and not self.finals_not_one
        )

    @property
    def seconds(self) -> float:
        if not self.first_created or not self.last_completed:
            return 0.0
        return (self.last_completed - self.first_created).total_seconds()


class Client:
    """One user of the API, and a reader of the store for the audit."""

    def __init__(self, api_base: str, mongo_url: str, site_url: str, pages: int, per_page: int):
        self.api, self.site = api_base, site_url
        self.pages, self.per_page = pages, per_page
        self.mongo = pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=10_000)
        self.db = self.mongo["scrapemaster"]
        self.http = requests.Session()
        self.headers: dict[str, str] = {}

    def register(self) -> None:
        name = f"sim{uuid.uuid4().hex[:10]}"
        body = {"username": name, "email": f"{name}@example.test", "password": "sim-password-1"}
        answer = self.http.post(f"{self.api}/auth/register", json=body, timeout=30)
        answer.raise_for_status()
        token = self.http.post(
            f"{self.api}/auth/login",
            data={"username": name, "password": body["password"]},
            timeout=30,
        ).json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def job_body(self) -> dict[str, Any]:
        return {
            "url": f"{self.site}/catalog/",
            "engine": "scrapy",
            "selectors": {
                "sku": "./@data-sku",
                "title": "h2.product-title::text",
                "price": "span.price::text",
            },
            "config": {
                "item_selector": "div.product",
                "follow_links": True,
                "link_selector": "li.next a",
                "concurrency": 1,
                "max_pages": self.pages,
            },
        }

    def submit(self, count: int) -> list[str]:
        ids = []
        for _ in range(count):
            for attempt in range(30):  # the API answers 503 while a dependency restarts
                try:
                    answer = self.http.post(
                        f"{self.api}/jobs", json=self.job_body(), headers=self.headers, timeout=30
                    )
                except requests.RequestException:
                    answer = None
                if answer is not None and answer.status_code == 201:
                    ids.append(answer.json()["id"])
                    break
                time.sleep(min(2.0, 0.2 * (attempt + 1)))
            else:
                raise RuntimeError(f"POST /jobs kept failing: {answer and answer.text}")
        return ids

    def statuses(self, ids: list[str]) -> Counter:
        docs = self.db.jobs.find({"_id": {"$in": ids}}, {"status": 1})
        return Counter(d["status"] for d in docs)

    def running_on(self, ids: list[str], host: str) -> list[dict]:
        docs = self.db.jobs.find({"_id": {"$in": ids}, "status": "running"})
        return [d for d in docs if host_of(d.get("worker")) == host]

    def wait(self, ids: list[str], timeout: float, poll: float = 0.5) -> bool:
        """Wait until every job ended (completed, failed or cancelled)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                counts = self.statuses(ids)
            except pymongo.errors.PyMongoError:
                counts = Counter()
            if sum(counts[s] for s in ("completed", "failed", "cancelled")) == len(ids):
                return True
            time.sleep(poll)
        return False

    def audit(self, ids: list[str]) -> Audit:
        audit = Audit(jobs=len(ids), items_expected=len(ids) * self.pages * self.per_page)
        expected = {f"SKU-{i:05d}" for i in range(1, self.pages * self.per_page + 1)}
        for job in self.db.jobs.find({"_id": {"$in": ids}}):
            if job["status"] == "completed":
                audit.completed += 1
            else:
                audit.not_completed.append(f"{job['_id']}:{job['status']}")
            audit.by_host[host_of(job.get("worker"))] += 1
            audit.host_of_job[job["_id"]] = host_of(job.get("worker"))
            created, completed = job.get("created_at"), job.get("completed_at")
            if created and (audit.first_created is None or created < audit.first_created):
                audit.first_created = created
            if completed and (audit.last_completed is None or completed > audit.last_completed):
                audit.last_completed = completed
            skus = [r["data"]["sku"] for r in items.iterate(self.db, job["_id"])]
            audit.items_stored += len(skus)
            audit.duplicates += len(skus) - len(set(skus))
            audit.missing += len(expected - set(skus))
            finals = self.db.logs.count_documents(
                {"job_id": job["_id"], "message": {"$regex": "^completed"}}
            )
            audit.finals_not_one += finals != 1
        return audit

    def log_times(self, job_id: str, pattern: str) -> list[datetime]:
        """Times of the job's log lines matching `pattern` (a regex), oldest first."""
        found = self.db.logs.find({"job_id": job_id, "message": {"$regex": pattern}}).sort(
            "timestamp", 1
        )
        return [line["timestamp"] for line in found]

    def close(self) -> None:
        self.mongo.close()
        self.http.close()
