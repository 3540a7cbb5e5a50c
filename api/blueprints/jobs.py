"""Jobs: submit, list, read, change, cancel, retry, reset, delete, stats and logs."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import request
from flask.views import MethodView

from api import schemas
from api.json_guard import Blueprint
from api.security import auth_required, current_user
from api.services import jobs

blp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs", description="Scraping jobs")


def _link_header(args: dict, page) -> str:
    """first/prev/next/last: keyset cursors (`after`/`before`: the same cost on any page)
    for prev and next, `skip` for last (read from the far end, so also cheap)."""
    base = request.base_url
    limit = args["limit"]
    params = {
        k: v
        for k, v in request.args.items()
        if k not in ("skip", "limit", "page", "per_page", "after", "before")
    }

    def url(**at) -> str:
        return f"{base}?{urlencode({**params, **at, 'limit': limit})}"

    total = page.total
    last = max(0, (total - 1) // limit * limit) if total else 0
    links = [f'<{url()}>; rel="first"']
    at_start = not args.get("after") and not args.get("before") and args["skip"] == 0
    if page.jobs and not at_start:
        links.append(f'<{url(before=page.jobs[0]["_id"])}>; rel="prev"')
    if page.jobs and page.more_after:
        links.append(f'<{url(after=page.jobs[-1]["_id"])}>; rel="next"')
    links.append(f'<{url(skip=last)}>; rel="last"')
    return ", ".join(links)


@blp.route("")
class Jobs(MethodView):
    decorators = [auth_required]

    @blp.arguments(schemas.JobListArgs, location="query")
    @blp.response(200, schemas.JobOut(many=True))
    def get(self, args):
        """List the caller's jobs (all jobs for an admin), newest first."""
        if "per_page" in args or "page" in args:
            args["limit"] = args.get("per_page", args["limit"])
            args["skip"] = (args.get("page", 1) - 1) * args["limit"]
        page = jobs.list_jobs(current_user(), args)
        headers = {"X-Total-Count": str(page.total), "Link": _link_header(args, page)}
        return page.jobs, 200, headers

    @blp.arguments(schemas.JobCreate)
    @blp.response(201, schemas.JobOut)
    def post(self, spec):
        """Submit a scraping job."""
        return jobs.submit(spec, current_user())


@blp.route("/stats")
class Stats(MethodView):
    decorators = [auth_required]

    @blp.response(200, schemas.JobStats)
    def get(self):
        """Counts of the caller's jobs by status."""
        return jobs.stats(current_user())


@blp.route("/batch")
class Batch(MethodView):
    decorators = [auth_required]

    @blp.arguments(schemas.BatchDelete)
    @blp.response(200, schemas.BatchDeleteOut)
    def delete(self, body):
        """Delete several jobs; reports each one that could not be deleted."""
        return jobs.batch_delete(body["job_ids"], current_user())


@blp.route("/retry-failed")
class RetryFailed(MethodView):
    decorators = [auth_required]

    @blp.response(200, schemas.RetriedOut)
    def post(self):
        """Retry every failed job of the caller."""
        return jobs.retry_failed(current_user())


@blp.route("/<job_id>")
class Job(MethodView):
    decorators = [auth_required]

    @blp.response(200, schemas.JobOut)
    def get(self, job_id):
        """One job with its status, counters and files."""
        return jobs.detail(job_id, current_user())

    @blp.arguments(schemas.JobUpdate)
    @blp.response(200, schemas.JobOut)
    @blp.alt_response(409, response="CONFLICT")
    def patch(self, changes, job_id):
        """Change a pending job's priority, selectors, config or url."""
        return jobs.update(job_id, current_user(), changes)

    @blp.arguments(schemas.JobUpdate)
    @blp.response(200, schemas.JobOut)
    @blp.alt_response(409, response="CONFLICT")
    def put(self, changes, job_id):
        """Change a pending job (same as PATCH)."""
        return jobs.update(job_id, current_user(), changes)

    @blp.response(204)
    def delete(self, job_id):
        """Stop the job if it runs, then delete it and its results."""
        jobs.delete(job_id, current_user())


@blp.route("/<job_id>/cancel")
class Cancel(MethodView):
    decorators = [auth_required]

    @blp.response(200, schemas.JobOut)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, job_id):
        """Stop a pending or running job; items so far are kept."""
        return jobs.cancel(job_id, current_user())


@blp.route("/<job_id>/retry")
class Retry(MethodView):
    decorators = [auth_required]

    @blp.response(200, schemas.JobOut)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, job_id):
        """Run a failed or cancelled job again, keeping its items."""
        return jobs.retry(job_id, current_user())


@blp.route("/<job_id>/reset")
class Reset(MethodView):
    decorators = [auth_required]

    @blp.response(200, schemas.JobOut)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, job_id):
        """Clear a finished job's results and run it again."""
        return jobs.reset(job_id, current_user())


@blp.route("/<job_id>/logs")
class Logs(MethodView):
    decorators = [auth_required]

    @blp.arguments(schemas.LogArgs, location="query")
    @blp.response(200, schemas.LogsOut)
    def get(self, args, job_id):
        """The job's log lines, oldest first."""
        return jobs.logs(job_id, current_user(), args.get("level"), args["limit"])
