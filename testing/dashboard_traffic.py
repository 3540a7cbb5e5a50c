"""The API calls of an hour of dashboard use, at the cadence of its pages (api/static/*.js), and
of a script that polls a job once a second: what the read budget must hold.

A call is `(second, method, path)`, `{job}` and `{file}` standing for ids. The hour, heavy on
purpose: the jobs page open all along (its event stream, a new job listed each minute); every
ten minutes a job page opened (the job, its first results, its logs, its files with their
thumbnails, which are `no-store`, and its event stream) and kept open on a running crawl that
reports progress and log lines without pause (results reloaded at most once a second, logs at
most twice: page-job.js `later`), the job's start and end reloading it with its files; the
access token refreshed each hour (anonymous bucket, not a read)."""

from __future__ import annotations

Call = tuple[float, str, str]

HOUR = 3600
THUMBNAILS = 100  # page-job.js FILES_SHOWN: the thumbnails of a files load, each a GET


def _files_load(t: float) -> list[Call]:
    return [(t, "GET", "/api/v1/jobs/{job}/files?limit=100")] + [
        (t, "GET", "/api/v1/jobs/{job}/files/{file}?token=…") for _ in range(THUMBNAILS)
    ]


def _job_page(start: float, seconds: float) -> list[Call]:
    calls: list[Call] = [
        (start, "GET", "/api/v1/jobs/{job}"),
        (start, "GET", "/api/v1/results/{job}?limit=20"),
        (start, "GET", "/api/v1/jobs/{job}/logs?limit=500"),
        (start, "GET", "/api/v1/jobs/{job}/events?token=…"),
        *_files_load(start),
    ]
    # job.started, then progress and log lines without pause until job.completed
    calls += [
        (start + 1, "GET", "/api/v1/jobs/{job}"),
        (start + 1, "GET", "/api/v1/jobs/{job}/logs?limit=500"),
    ]
    calls += _files_load(start + 1)
    t = start + 1.0
    while t < start + seconds - 1:
        calls.append((t, "GET", "/api/v1/results/{job}?limit=20"))  # at most once a second
        calls.append((t, "GET", "/api/v1/jobs/{job}/logs?limit=500"))  # at most twice
        calls.append((t + 0.5, "GET", "/api/v1/jobs/{job}/logs?limit=500"))
        t += 1.0
    end = start + seconds - 1
    calls += [(end, "GET", "/api/v1/jobs/{job}"), (end, "GET", "/api/v1/jobs/{job}/logs?limit=500")]
    calls += _files_load(end)
    return calls


def dashboard_hour() -> list[Call]:
    """An hour of one user's dashboard, in time order."""
    calls: list[Call] = [
        (0.0, "GET", "/api/v1/events?token=…"),
        (0.0, "GET", "/api/v1/jobs?limit=100"),
    ]
    calls += [(60.0 * m + 30, "GET", "/api/v1/jobs/{job}") for m in range(60)]  # a new job listed
    for start in range(0, HOUR, 600):
        calls += _job_page(float(start), 600.0)
    return sorted(calls, key=lambda call: call[0])


def polling_script_hour() -> list[Call]:
    """A script that asks for its job once a second for an hour."""
    return [(float(s), "GET", "/api/v1/jobs/{job}") for s in range(HOUR)]


def busiest_span(calls: list[Call], window_seconds: float) -> list[Call]:
    """The most calls within any `window_seconds` (whatever the window's alignment: a fixed
    window opens at the first call after the last one closed)."""
    best = (0, 0)
    first = 0
    for last, call in enumerate(calls):
        while call[0] - calls[first][0] >= window_seconds:
            first += 1
        if last + 1 - first > best[1] - best[0]:
            best = (first, last + 1)
    return calls[best[0] : best[1]]
