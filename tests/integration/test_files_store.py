"""A job's files in GridFS: stored, listed, read back, counted, replaced on a re-run, deleted."""

from __future__ import annotations

import os

import pytest

from shared.files import JobFiles
from shared.results import ItemSink

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(300_000)  # several GridFS chunks


def test_files_round_trip_count_and_go_with_their_job(db):
    files = JobFiles(db)
    files.ensure_indexes()
    shot = files.put("j1", "u1", "http://a.test/x", "screenshot", "image/png", PNG)
    doc = files.put("j1", "u1", "http://a.test/y", "pdf", "application/pdf", b"%PDF-1.4 x")
    files.put("j2", "u1", "http://a.test/z", "pdf", "application/pdf", b"%PDF-1.4 yy")
    files.put("j3", "u2", "http://b.test/", "pdf", "application/pdf", b"%PDF-1.4 zzz")
    assert set(shot) == {"id", "job_id", "url", "kind", "content_type", "size", "created_at"}
    assert shot["size"] == len(PNG) and shot["kind"] == "screenshot"

    total, listed = files.list("j1", skip=0, limit=10)
    assert total == 2 and [f["id"] for f in listed] == [shot["id"], doc["id"]]
    assert files.list("j1", skip=1, limit=10)[1] == [doc]
    stream = files.open("j1", shot["id"])
    assert stream is not None and stream.read() == PNG
    assert files.open("j2", shot["id"]) is None  # another job's file id
    assert files.open("j1", "not-an-id") is None
    assert files.position("j1", doc["id"]) == 2
    assert files.usage_for_job("j1") == {"count": 2, "bytes": len(PNG) + 10}
    assert files.usage_for_jobs(["j1", "j9"])["j9"] == {"count": 0, "bytes": 0}
    assert files.bytes_for_owner("u1") == len(PNG) + 10 + 11

    assert files.delete_for_job("j1") == 2
    assert files.list("j1")[0] == 0
    # only the other jobs' chunks are left: one chunk each
    assert db["fs.chunks"].count_documents({}) == 2
    assert files.bytes_for_owner("u1") == 11


def test_a_rerun_replaces_a_page_file_and_a_lost_run_takes_its_files_back(db):
    first = ItemSink(db, "j1", max_pages=10, run_id="r1", owner_id="u1", count_existing=False)
    assert first.file("http://a.test/", "pdf", "application/pdf", b"%PDF-one")
    first.close()
    second = ItemSink(db, "j1", max_pages=10, run_id="r2", owner_id="u1", max_files=1)
    assert second.file("http://a.test/", "pdf", "application/pdf", b"%PDF-two")
    assert not second.file("http://a.test/more", "pdf", "application/pdf", b"%PDF-3")
    second.close()
    total, listed = JobFiles(db).list("j1")
    stream = JobFiles(db).open("j1", listed[0]["id"])
    assert total == 1 and stream is not None and stream.read() == b"%PDF-two"
    assert second.purge(None) == 0  # the job is gone: run r2's items and files go too
    assert JobFiles(db).list("j1")[0] == 0 and db["fs.chunks"].count_documents({}) == 0


def test_asking_for_files_puts_an_auto_job_on_the_browser_queue(client, auth, db):
    asked = client.post(
        "/api/v1/jobs",
        json={"url": "http://127.0.0.1:9/", "config": {"output": ["screenshot", "markdown"]}},
        headers=auth,
    )
    assert asked.status_code == 201, asked.get_json()
    assert db.jobs.find_one({"_id": asked.get_json()["id"]})["queue"] == "playwright"
    # a pending auto job changed to ask for them moves to the browser's queue too
    plain = client.post("/api/v1/jobs", json={"url": "http://127.0.0.1:9/"}, headers=auth)
    job_id = plain.get_json()["id"]
    assert db.jobs.find_one({"_id": job_id})["queue"] == "scrapy"
    changed = client.patch(
        f"/api/v1/jobs/{job_id}", json={"config": {"output": "pdf"}}, headers=auth
    )
    assert changed.status_code == 200, changed.get_json()
    assert db.jobs.find_one({"_id": job_id})["queue"] == "playwright"
    answer = client.get(f"/api/v1/jobs/{job_id}", headers=auth).get_json()
    assert answer["files"] == {"count": 0, "bytes": 0}
    # a scrapy job cannot, neither at submit nor by a change
    scrapy = client.post(
        "/api/v1/jobs", json={"url": "http://127.0.0.1:9/", "engine": "scrapy"}, headers=auth
    )
    refused = client.patch(
        f"/api/v1/jobs/{scrapy.get_json()['id']}",
        json={"config": {"output": ["screenshot"]}},
        headers=auth,
    )
    assert refused.status_code == 422
    assert "browser" in refused.get_json()["errors"]["config.output"][0]
