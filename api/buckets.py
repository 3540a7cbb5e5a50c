"""Which rate-limit bucket a request counts against, from its endpoint and method alone (no
request needed: the OpenAPI document names each operation's bucket too). api/limits.py counts."""

from __future__ import annotations

BUCKETS = ("reads", "writes", "submissions", "anonymous")
READ_METHODS = frozenset({"GET", "HEAD"})
# endpoints (Flask's names) whose POST starts real work: crawls, previews, reruns
SUBMISSION_ENDPOINTS = frozenset(
    {
        "jobs.Jobs",
        "preview.Preview",
        "jobs.Retry",
        "jobs.Reset",
        "jobs.RetryFailed",
        "schedules.RunNow",
    }
)
SCRAPYD_SUBMISSIONS = frozenset({"schedule"})  # /scrapyd/schedule.json


def bucket_of(endpoint: str | None, method: str, scrapyd_name: str | None = None) -> str:
    """The bucket of an authenticated request (anonymous ones count as `anonymous`)."""
    if method.upper() in READ_METHODS:
        return "reads"
    if method.upper() == "POST" and (
        endpoint in SUBMISSION_ENDPOINTS or scrapyd_name in SCRAPYD_SUBMISSIONS
    ):
        return "submissions"
    return "writes"
