"""How a job's items are stored: in chunks, one document per page (or per part of a big page).

    {_id: "<job>:<epoch>:<page hash>:<part>", job_id, run_id, epoch, url, scraped_at,
     first: position of its first item in the job (0-based), n, items: [data, ...]}

A document per item made the store spend most of a crawl's CPU on per-document work (about
0.25 ms an item with its index on the embedded SecantusDB, 0.03 ms in chunks of ten). The key
is the same for the same page on a re-run, so a re-run adds no duplicates. `first` numbers the
items densely in the order they were written, so a page of results, an export or a change
comparison reads only the chunks of its range (index job_id + first), never a whole job at
once. A run that followed another (retry, take-over) renumbers at its end (`renumber`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from pymongo import UpdateOne
from pymongo.database import Database

CHUNK_ITEMS = 100  # items per stored chunk; a page with more is split
CHUNK_BYTES = 4 * 1024 * 1024  # text per chunk, well under BSON's 16 MiB document limit
WINDOW = 2000  # items read per query when walking a job


def chunk_key(job_id: str, page_url: str, part: int, epoch: int = 0) -> str:
    """The same page and part give the same key on a re-run. A reset starts a new epoch, so
    a run from before the reset can never collide with (and then purge) a chunk after it."""
    digest = hashlib.blake2b(page_url.encode("utf-8", "replace"), digest_size=10).hexdigest()
    return f"{job_id}:{digest}:{part}" if not epoch else f"{job_id}:{epoch}:{digest}:{part}"


def split(found: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """One page's items in parts of at most CHUNK_ITEMS items and about CHUNK_BYTES."""
    part: list[dict[str, Any]] = []
    size = 0
    for data in found:
        weight = len(json.dumps(data, default=str, ensure_ascii=False))
        if part and (len(part) >= CHUNK_ITEMS or size + weight > CHUNK_BYTES):
            yield part
            part, size = [], 0
        part.append(data)
        size += weight
    if part:
        yield part


def count(db: Database, job_id: str) -> int:
    """Items stored for a job."""
    rows = list(
        db.results.aggregate(
            [{"$match": {"job_id": job_id}}, {"$group": {"_id": None, "n": {"$sum": "$n"}}}]
        )
    )
    return int(rows[0]["n"]) if rows else 0


def _rows(chunk: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for index, data in enumerate(chunk.get("items") or []):
        yield {
            "ref": f"{chunk['_id']}#{index}",
            "position": int(chunk.get("first") or 0) + index,
            "job_id": chunk.get("job_id"),
            "url": chunk.get("url"),
            "data": data,
            "scraped_at": chunk.get("scraped_at"),
        }


def _window(db: Database, job_id: str, low: int, high: int) -> list[dict[str, Any]]:
    """Chunks whose first item lies in [low, high), in order."""
    found = list(db.results.find({"job_id": job_id, "first": {"$gte": low, "$lt": high}}))
    found.sort(key=lambda c: (int(c.get("first") or 0), str(c["_id"])))
    return found


def iterate(db: Database, job_id: str, start: int = 0) -> Iterator[dict[str, Any]]:
    """Every item of a job from position `start`, in order, a window of chunks at a time."""
    low = max(0, start - CHUNK_ITEMS)
    while True:
        chunks = _window(db, job_id, low, low + WINDOW)
        for chunk in chunks:
            for row in _rows(chunk):
                if row["position"] >= start:
                    yield row
        low += WINDOW
        if (
            not chunks
            and db.results.find_one({"job_id": job_id, "first": {"$gte": low}}, {"_id": 1}) is None
        ):
            return


def page(db: Database, job_id: str, skip: int, limit: int, total: int) -> list[dict[str, Any]]:
    """Items at positions skip .. skip+limit-1 of `total`: the chunks of that range only, when
    the positions are dense (they are, but while a re-run writes); else walked from the start."""
    chunks = _window(db, job_id, max(0, skip - CHUNK_ITEMS + 1), skip + limit)
    rows = [row for chunk in chunks for row in _rows(chunk)]
    positions = [row["position"] for row in rows]
    dense = positions == list(range(positions[0], positions[0] + len(positions))) if rows else True
    end = min(skip + limit, total) - 1
    covered = positions[0] <= skip and positions[-1] >= end if rows else skip >= total
    if dense and covered:
        return [row for row in rows if skip <= row["position"] < skip + limit]
    found = []
    for index, row in enumerate(iterate(db, job_id)):
        if index >= skip + limit:
            break
        if index >= skip:
            found.append(row)
    return found


def fetch(db: Database, refs: list[str]) -> dict[str, Any]:
    """ref -> item data, for item references (`chunk id#index`)."""
    wanted: dict[str, list[tuple[str, int]]] = {}
    for ref in refs:
        chunk_id, _, position = ref.rpartition("#")
        wanted.setdefault(chunk_id, []).append((ref, int(position or 0)))
    found: dict[str, Any] = {}
    for chunk in db.results.find({"_id": {"$in": sorted(wanted)}}, {"items": 1}):
        held = chunk.get("items") or []
        for ref, at in wanted.get(chunk["_id"], []):
            if at < len(held):
                found[ref] = held[at]
    return found


def renumber(db: Database, job_id: str) -> int:
    """Make a job's positions dense again (after runs that overlapped); its item count."""
    chunks = list(db.results.find({"job_id": job_id}, {"first": 1, "n": 1}))
    chunks.sort(key=lambda c: (int(c.get("first") or 0), str(c["_id"])))
    updates, position = [], 0
    for chunk in chunks:
        if chunk.get("first") != position:
            updates.append(UpdateOne({"_id": chunk["_id"]}, {"$set": {"first": position}}))
        position += int(chunk.get("n") or 0)
    if updates:
        db.results.bulk_write(updates, ordered=False)
    return position


def migrate(db: Database) -> None:
    """Chunk the one-document-per-item results of a store from before chunks (once)."""
    if db.meta.find_one({"_id": "item_chunks", "version": 1}) is not None:
        return
    legacy = db.results.find_one({"data": {"$exists": True}}, {"job_id": 1})
    touched: set[str] = set()
    while legacy is not None:
        batch = list(db.results.find({"data": {"$exists": True}}).limit(1000))
        if not batch:
            break
        db.results.bulk_write(
            [
                UpdateOne(
                    {"_id": doc["_id"]},
                    {
                        "$set": {
                            "items": [doc.get("data") or {}],
                            "n": 1,
                            "first": max(0, int(doc.get("seq") or 1) - 1),
                        },
                        "$unset": {"data": "", "seq": ""},
                    },
                )
                for doc in batch
            ],
            ordered=False,
        )
        touched.update(str(doc.get("job_id")) for doc in batch)
    for job_id in sorted(touched):
        renumber(db, job_id)
    db.meta.update_one({"_id": "item_chunks"}, {"$set": {"version": 1}}, upsert=True)


def write(
    db: Database,
    job_id: str,
    found: list[dict[str, Any]],
    url: str = "http://127.0.0.1/",
    per_page: int = 10,
    scraped_at: Any = None,
) -> int:
    """Store items as if pages of `per_page` items had been crawled from `url` (for tests and
    benchmarks that fill a store directly); the item count."""
    chunks, position = [], 0
    for page, start in enumerate(range(0, len(found), per_page)):
        data = found[start : start + per_page]
        page_url = f"{url}?page={page}"
        chunks.append(
            {
                "_id": chunk_key(job_id, page_url, 0),
                "job_id": job_id,
                "epoch": 0,
                "url": page_url,
                "first": position,
                "n": len(data),
                "items": data,
                "scraped_at": scraped_at,
            }
        )
        position += len(data)
    for start in range(0, len(chunks), 1000):
        db.results.insert_many(chunks[start : start + 1000], ordered=False)
    return position
