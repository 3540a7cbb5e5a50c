"""Stacks never share a Redis database: a number is held by one live stack at a time, and when
all are held the next stack gets a redis-server of its own (testing/helpers.py RedisLease)."""

from __future__ import annotations

import pytest
import redis

from testing.helpers import RedisLease

pytestmark = pytest.mark.integration


def test_leases_never_share_a_database_even_past_fifteen(redis_url, tmp_path):
    leases: list[RedisLease] = []
    try:
        while not any(lease.service for lease in leases):  # until the numbers ran out
            leases.append(RedisLease(redis_url, tmp_path))
            assert len(leases) <= 16
        assert len({lease.url for lease in leases}) == len(leases)
        for index, lease in enumerate(leases):
            redis.Redis.from_url(lease.url).set("holder", index)
        held = [int(redis.Redis.from_url(lease.url).get("holder")) for lease in leases]
        assert held == list(range(len(leases)))  # no write landed in another's database
        own = leases[-1].service
        assert own is not None and own.url != redis_url

        returned = leases.pop(0)
        number = returned.number
        returned.release()
        again = RedisLease(redis_url, tmp_path)
        leases.append(again)
        assert again.number == number  # a number comes back only once its holder let go...
        assert redis.Redis.from_url(again.url).get("holder") is None  # ...and emptied
    finally:
        for lease in leases:
            lease.release()
    assert own.proc.poll() is not None  # the server of its own is stopped with its lease
