"""Newest-first reads of a time-ordered collection, a window of an index at a time.

The embedded store uses an index for a query's equality part and its range, but sorts every
document the query matches: `find(base).sort(field, -1).limit(n)` costs the whole history
behind `base`. Reading windows of `field` from the newest back, each query matches one window,
so a page costs the same at 100 documents as at 100,000. Used for schedules' run history
(shared/run_history.py) and webhooks' delivery logs (shared/webhooks.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, overload

from pymongo.collection import Collection

MAX_WINDOWS = 64


@overload
def aware(moment: datetime) -> datetime: ...
@overload
def aware(moment: None) -> None: ...
def aware(moment: datetime | None) -> datetime | None:
    """MongoDB hands datetimes back naive (UTC); make them aware."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


_Doc = TypeVar("_Doc", bound=Mapping[str, Any])  # the collection's document type


def newest_first(
    coll: Collection,
    base: dict[str, Any],
    field: str,
    newest: datetime,
    floor: datetime,
    window: timedelta,
    keep: Callable[[_Doc], bool] = lambda doc: True,
    tiebreak: tuple[str, ...] = ("_id",),
) -> Iterator[_Doc]:
    """Documents matching `base` and `keep` with `field` in [floor, newest], newest first,
    windows of `window` (doubling; fourfold across empty stretches)."""
    edge, floor = aware(newest) + timedelta(milliseconds=1), aware(floor)

    def order(doc: Mapping[str, Any]) -> tuple:
        return (doc[field], *(doc.get(name) for name in tiebreak))

    for _ in range(MAX_WINDOWS):
        if edge < floor:
            return
        low = max(edge - window, floor)
        rows = list(coll.find({**base, field: {"$gte": low, "$lt": edge}}))
        yield from sorted((doc for doc in rows if keep(doc)), key=order, reverse=True)
        if low <= floor:
            return
        edge = low
        window = window * (4 if not rows else 2)
    # past MAX_WINDOWS (windows grow, so only centuries of history get here): the rest at once
    rest = coll.find({**base, field: {"$gte": floor, "$lt": edge}}).sort(field, -1)
    yield from (doc for doc in rest if keep(doc))
