"""Jobs: submit, list, read, change, cancel, retry, reset, delete, stats and logs."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from api import schemas
from api.security import auth_required, current_user
from api.services import jobs

blp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs", description="Scraping jobs")


def _link_header(skip: int, limit: int, total: int) -> str:
    base = request.base_url
    params = {
        k: v for k, v in request.args.items() if k not in ("skip", "limit", "page", "per_page")
    }

    def url(at: int) -> str:
        return f"{base}?{urlencode({**params, 'skip': at, 'limit': limit})}"

    last = max(0, (total - 1) // limit * limit) if total else 0
    links = [f'<{url(0)}>; rel="first"']
    if skip > 0:
        links.append(f'<{url(max(0, skip - limit))}>; rel="prev"')
    if skip + limit < total:
        links.append(f'<{url(skip + limit)}>; rel="next"')
    links.append(f'<{url(last)}>; rel="last"')
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
        found, total = jobs.list_jobs(current_user(), args)
        headers = {
            "X-Total-Count": str(total),
            "Link": _link_header(args["skip"], args["limit"], total),
        }
        return found, 200, headers

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
        """One job with its status and counters."""
        return jobs.get(job_id, current_user())

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
