"""Items a run was told are stored survive a SIGKILL of the store: the sink's writes wait for
the journal (issue 21: a completed job was one page short after the chaos suite killed
SecantusDB, and the job's final count, taken from the store, agreed with the loss)."""

from __future__ import annotations

import signal

import pymongo
import pytest

from deploy import embedded
from shared import items
from shared.results import ItemSink

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROUNDS = 3  # a write only in the store's memory was lost in the first round already


def _kill(service: embedded.Service) -> None:
    service.proc.send_signal(signal.SIGKILL)
    service.proc.wait(10)


def test_items_the_sink_stored_survive_a_sigkill_of_the_store(tmp_path):
    port = embedded.free_port()
    data = tmp_path / "store"  # on disk, as `make run` keeps it (var/mongo)
    store = embedded.start_secantus(data, port)
    try:
        for round_ in range(ROUNDS):
            # a short server selection: closing a client of a killed store ends its sessions,
            # which otherwise waits 30 s for a server that is gone
            client: pymongo.MongoClient = pymongo.MongoClient(
                store.url, serverSelectionTimeoutMS=2000
            )
            job_id = f"job{round_}"
            sink = ItemSink(client.kill_test, job_id, max_pages=1, count_existing=False)
            sink.items(f"http://127.0.0.1/catalog/page/{round_}", [{"n": i} for i in range(10)])
            counters = sink.close()  # written and acknowledged
            assert counters["items_scraped"] == 10 and counters["items_failed"] == 0
            _kill(store)  # at once: what the store had only in memory is gone
            client.close()
            store = embedded.start_secantus(data, port)
            with pymongo.MongoClient(store.url) as reader:
                kept = items.count(reader.kill_test, job_id)
            assert kept == 10, f"round {round_}: {kept} of 10 acknowledged items survived"
    finally:
        store.stop()
