"""Screenshots and PDFs of a job's pages through the service: captured by the browser worker,
stored in GridFS, listed, downloaded by their owner only, clipped to MAX_FILE_BYTES, and gone
with a reset or a delete."""

from __future__ import annotations

import os
import re

import pytest
import requests
from bson import ObjectId

from shared.files import JobFiles
from testing.helpers import Stack
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.browser]

MAX_FILE_BYTES = 50_000  # a catalog page's full screenshot is ~85 kB, its PDF ~25 kB
FULL_HEIGHT = 1_800  # the catalog pages are ~1900 px tall at 1280 px wide


@pytest.fixture(scope="module")
def files_stack(redis_url, mongo_url, tmp_path_factory):
    stack = Stack(redis_url, mongo_url, f"files_{os.getpid()}", tmp_path_factory.mktemp("files"))
    try:
        stack.start(api=True, queues=("playwright",), MAX_FILE_BYTES=str(MAX_FILE_BYTES))
        yield stack
    finally:
        stack.stop()


def _files(stack, job_id, headers, **params) -> requests.Response:
    return requests.get(
        stack.url(f"/jobs/{job_id}/files"), headers=headers, params=params, timeout=10
    )


def _png_size(data: bytes) -> tuple[int, int]:
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _stored_ids(stack, job_id) -> tuple[set, set]:
    """Ids of the job's GridFS files, and the file ids its chunks belong to."""
    db = stack.database()
    files = {f["_id"] for f in db["fs.files"].find({"metadata.job_id": job_id}, {"_id": 1})}
    chunks = {c["files_id"] for c in db["fs.chunks"].find({"files_id": {"$in": list(files)}})}
    return files, chunks


def test_screenshots_and_pdfs_are_listed_downloaded_clipped_owned_and_go_with_the_job(
    files_stack,
):
    stack = files_stack
    headers = stack.register()
    token = headers["Authorization"].removeprefix("Bearer ")
    with SiteServer(pages=2) as site:
        job = stack.submit(
            headers,
            url=f"{site.url}/catalog/",
            selectors={"title": "h2.product-title::text"},
            config={
                "item_selector": "div.product",
                "follow_links": True,
                "link_selector": "li.next a",
                "max_pages": 2,
                "output": ["screenshot", "pdf"],
            },
        )
        done = stack.wait_job(job["id"], headers, timeout=120)
        assert done["status"] == "completed", done
        # auto ran it in the browser from the start; items are extracted as usual
        assert (done["engine_used"], done["items_scraped"]) == ("playwright", 20)
        assert any("clipped" in w for w in done["warnings"]), done["warnings"]

        answer = _files(stack, job["id"], headers)
        assert answer.status_code == 200, answer.text
        listing = answer.json()
        assert listing["total"] == 4 and len(listing["files"]) == 4
        assert sorted(f["kind"] for f in listing["files"]) == [
            "pdf",
            "pdf",
            "screenshot",
            "screenshot",
        ]
        assert {f["url"] for f in listing["files"]} == {
            f"{site.url}/catalog/",
            f"{site.url}/catalog/page/2",
        }
        assert done["files"] == {"count": 4, "bytes": sum(f["size"] for f in listing["files"])}
        assert (
            _files(stack, job["id"], headers, skip=3, limit=10).json()["files"]
            == listing["files"][3:]
        )

        for entry in listing["files"]:
            # a link can download it: ?token= instead of the header
            got = requests.get(
                stack.url(f"/jobs/{job['id']}/files/{entry['id']}"),
                params={"token": token, "download": "true"},
                timeout=10,
            )
            assert got.status_code == 200, got.text
            assert len(got.content) == entry["size"]
            assert got.headers["Content-Type"] == entry["content_type"]
            disposition = got.headers["Content-Disposition"]
            if entry["kind"] == "screenshot":
                assert got.content.startswith(b"\x89PNG\r\n\x1a\n")
                width, height = _png_size(got.content)
                # clipped from the top to fit MAX_FILE_BYTES, still a real part of the page
                assert entry["size"] <= MAX_FILE_BYTES and 100 < height < FULL_HEIGHT
                assert width >= 800
                assert re.fullmatch(r'attachment; filename="127\.0\.0\.1-[1-4]\.png"', disposition)
            else:
                assert got.content.startswith(b"%PDF-") and b"%%EOF" in got.content[-1024:]
                assert 5_000 < entry["size"] <= MAX_FILE_BYTES
                assert re.fullmatch(r'attachment; filename="127\.0\.0\.1-[1-4]\.pdf"', disposition)

        # only the owner: anyone else's token finds no such job, with or without a file id
        other = stack.register()
        first = listing["files"][0]["id"]
        assert _files(stack, job["id"], other).status_code == 404
        assert (
            requests.get(
                stack.url(f"/jobs/{job['id']}/files/{first}"), headers=other, timeout=10
            ).status_code
            == 404
        )
        assert (
            requests.get(stack.url(f"/jobs/{job['id']}/files/{first}"), timeout=10).status_code
            == 401
        )
        assert (
            requests.get(
                stack.url(f"/jobs/{job['id']}/files/nonsense"), headers=headers, timeout=10
            ).status_code
            == 404
        )
        owner_id = stack.job(job["id"], headers)["owner_id"]
        assert JobFiles(stack.database()).bytes_for_owner(owner_id) == done["files"]["bytes"]

        # a reset removes the run's files: the next run stores new ones, the old chunks are gone
        old = {ObjectId(f["id"]) for f in listing["files"]}
        assert _stored_ids(stack, job["id"]) == (old, old)
        reset = requests.post(stack.url(f"/jobs/{job['id']}/reset"), headers=headers, timeout=10)
        assert reset.status_code == 200, reset.text
        again = stack.wait_job(job["id"], headers, timeout=120)
        assert again["status"] == "completed" and again["files"]["count"] == 4
        files, chunks = _stored_ids(stack, job["id"])
        assert len(files) == 4 and not files & old and chunks == files
        assert stack.database()["fs.chunks"].count_documents({"files_id": {"$in": list(old)}}) == 0

    # a delete takes every file and chunk of the job with it
    gone = requests.delete(stack.url(f"/jobs/{job['id']}"), headers=headers, timeout=10)
    assert gone.status_code == 204
    assert _stored_ids(stack, job["id"]) == (set(), set())
    assert stack.database()["fs.chunks"].count_documents({"files_id": {"$in": list(files)}}) == 0


def test_a_scrapy_job_cannot_ask_for_screenshots(files_stack):
    headers = files_stack.register()
    answer = requests.post(
        files_stack.url("/jobs"),
        json={"url": "http://127.0.0.1:9/", "engine": "scrapy", "config": {"output": ["pdf"]}},
        headers=headers,
        timeout=10,
    )
    assert answer.status_code == 422, answer.text
    assert "config.output" in answer.json()["errors"]
    assert "browser" in answer.json()["errors"]["config.output"][0]
