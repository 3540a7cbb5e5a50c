"""Items stored in chunks: idempotent re-runs, dense positions, paging windows, legacy stores."""

from __future__ import annotations

import pytest

from shared import items
from shared.results import ItemSink

pytestmark = pytest.mark.integration


def _pages(sink: ItemSink, pages: range, per_page: int = 10) -> None:
    for page in pages:
        url = f"http://site/p{page}"
        sink.page(url, 200)
        sink.items(url, [{"sku": f"S{page:03d}-{i}"} for i in range(per_page)])


def _skus(db, job_id: str) -> list[str]:
    return [row["data"]["sku"] for row in items.iterate(db, job_id)]


def test_a_rerun_adds_no_duplicates_and_positions_stay_dense(db):
    first = ItemSink(db, "j1", max_pages=100, batch_size=25, count_existing=False)
    _pages(first, range(0, 6))
    assert first.close()["items_scraped"] == 60
    # a take-over re-crawls pages 3..8: 3..5 are stored already, 6..8 are new
    second = ItemSink(db, "j1", max_pages=100, batch_size=25, count_existing=True)
    _pages(second, range(3, 9))
    assert second.close()["items_scraped"] == 90
    positions = [row["position"] for row in items.iterate(db, "j1")]
    assert positions == list(range(90)) and items.count(db, "j1") == 90
    skus = _skus(db, "j1")
    assert len(set(skus)) == 90 and skus[:10] == [f"S000-{i}" for i in range(10)]


def test_a_big_page_is_split_and_pages_read_only_their_window(db):
    sink = ItemSink(db, "j2", max_pages=10, batch_size=500, count_existing=False)
    _pages(sink, range(0, 3), per_page=250)  # 250 items: three chunks each
    assert sink.close()["items_scraped"] == 750
    assert db.results.count_documents({"job_id": "j2"}) == 9
    rows = items.page(db, "j2", 240, 20, 750)
    assert [r["position"] for r in rows] == list(range(240, 260))
    assert rows[0]["data"] == {"sku": "S000-240"} and rows[-1]["data"] == {"sku": "S001-9"}
    assert items.page(db, "j2", 745, 100, 750)[-1]["position"] == 749
    assert items.page(db, "j2", 750, 10, 750) == []


def test_paging_over_a_gap_walks_the_job_and_renumber_closes_it(db):
    items.write(db, "j3", [{"n": i} for i in range(30)])
    db.results.delete_one({"job_id": "j3", "first": 10})  # a gap at 10..19
    rows = items.page(db, "j3", 10, 5, 20)
    assert [r["data"]["n"] for r in rows] == [20, 21, 22, 23, 24]
    assert items.renumber(db, "j3") == 20
    assert [r["position"] for r in items.iterate(db, "j3")] == list(range(20))


def test_item_references_fetch_their_fields(db):
    items.write(db, "j4", [{"n": i} for i in range(25)])
    refs = [row["ref"] for row in items.iterate(db, "j4")]
    found = items.fetch(db, [refs[0], refs[13], refs[24], "nope#1"])
    assert found == {refs[0]: {"n": 0}, refs[13]: {"n": 13}, refs[24]: {"n": 24}}


def test_results_of_an_older_store_are_chunked_once(db):
    db.results.insert_many(
        [
            {"_id": f"old:{i}", "job_id": "old", "seq": i + 1, "url": "u", "data": {"n": i}}
            for i in range(5)
        ]
    )
    items.migrate(db)
    assert [r["data"]["n"] for r in items.iterate(db, "old")] == [0, 1, 2, 3, 4]
    assert items.count(db, "old") == 5
    db.results.insert_one({"_id": "late", "job_id": "x", "data": {}})
    items.migrate(db)  # once: the marker stops it
    assert db.results.find_one({"_id": "late"})["data"] == {}
