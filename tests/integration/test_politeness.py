"""The fleet-wide site slots (shared/politeness.py) against a real Redis: the limit holds,
waiting jobs take turns, a dead holder's slot comes back, the delay spaces requests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
import redis

from shared.politeness import Limits, Politeness
from testing.helpers import closed_port, wait_for

pytestmark = pytest.mark.integration

SITE = "example.test"


def _client(url: str, concurrency: int = 2, delay: float = 0.0, lease: float = 30.0) -> Politeness:
    return Politeness(url, Limits(concurrency, delay, lease))


def test_waiting_jobs_take_turns_and_the_limit_holds(own_redis):
    async def scenario() -> tuple[list[str], int]:
        pol = _client(own_redis, concurrency=2)
        order: list[str] = []
        running = 0
        peak = 0
        gate = asyncio.Event()

        async def request(job: str) -> None:
            nonlocal running, peak
            token = await pol.acquire(SITE, job, 0)
            running += 1
            peak = max(peak, running)
            order.append(job)
            await gate.wait() if len(order) <= 2 else await asyncio.sleep(0.01)
            running -= 1
            await pol.release(SITE, token)

        # job A queues ten requests first, then job B two: B is not served after all of A's
        tasks = [asyncio.create_task(request("A")) for _ in range(10)]
        await asyncio.sleep(0.3)
        tasks += [asyncio.create_task(request("B")) for _ in range(2)]
        await asyncio.sleep(0.3)
        gate.set()
        await asyncio.gather(*tasks)
        await pol.aclose()
        return order, peak

    order, peak = asyncio.run(scenario())
    assert peak <= 2
    assert sorted(order) == ["A"] * 10 + ["B"] * 2
    # the two first A requests held the slots; then A and B alternate while both wait
    assert order[2:6] == ["A", "B", "A", "B"], order


def test_a_killed_holders_slot_comes_back_after_its_lease(own_redis, tmp_path):
    held = tmp_path / "held"
    code = (
        "import asyncio, sys\n"
        "from shared.politeness import Limits, Politeness\n"
        "async def main():\n"
        "    pol = Politeness(sys.argv[1], Limits(1, 0, 1.5))\n"
        "    await pol.acquire('example.test', 'dying', 0)\n"
        "    open(sys.argv[2], 'w').close()\n"
        "    await asyncio.sleep(3600)\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, own_redis, str(held)], cwd=os.getcwd())
    try:
        wait_for(held.exists, timeout=30)
        # alive, it renews its lease: the slot stays taken past the lease time
        time.sleep(2.0)
        assert redis.Redis.from_url(own_redis).zcard("politeness:{example.test}:leases") == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed_at = time.monotonic()

        async def take() -> float:
            pol = _client(own_redis, concurrency=1, lease=1.5)
            token = await pol.acquire(SITE, "survivor", 0)
            got = time.monotonic()
            await pol.release(SITE, token)
            await pol.aclose()
            return got

        waited = asyncio.run(take()) - killed_at
        assert waited <= 1.5 + 2.0  # within the lease (and a loaded machine's margin)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_delay_spaces_requests_of_every_job(own_redis):
    async def scenario() -> list[float]:
        pol = _client(own_redis, concurrency=8, delay=0.3)
        times: list[float] = []

        async def request(job: str) -> None:
            token = await pol.acquire(SITE, job, 0.3)
            times.append(time.monotonic())
            await pol.release(SITE, token)

        await asyncio.gather(*(request(job) for job in ("A", "B", "A", "B", "C")))
        await pol.aclose()
        return times

    times = asyncio.run(scenario())
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(times) == 5
    assert min(gaps) >= 0.28, gaps


def test_a_cancelled_waiter_leaves_the_queue(own_redis):
    async def scenario() -> float:
        pol = _client(own_redis, concurrency=1)
        first = await pol.acquire(SITE, "A", 0)
        waiter = asyncio.create_task(pol.acquire(SITE, "B", 0))
        await asyncio.sleep(0.2)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await pol.release(SITE, first)
        started = time.monotonic()
        second = await pol.acquire(SITE, "C", 0)  # not stuck behind B's dead ticket
        took = time.monotonic() - started
        await pol.release(SITE, second)
        await pol.aclose()
        return took

    assert asyncio.run(scenario()) < 1.0


def test_without_redis_requests_still_go_with_the_jobs_own_limits():
    async def scenario() -> bool:
        with closed_port() as port:
            pol = _client(f"redis://127.0.0.1:{port}/0", concurrency=1)
            async with pol.slot("http://example.test/", "A"):
                ran = True
            await pol.aclose()
        return ran

    assert asyncio.run(scenario())
