"""Scheduled jobs: CRUD, run now, history of runs, and what changed between runs."""

from __future__ import annotations

from flask.views import MethodView

from api import schemas_schedules as schemas
from api.json_guard import Blueprint
from api.security import auth_required, current_user
from api.services import schedules

blp = Blueprint("schedules", __name__, url_prefix="/api/v1/schedules", description="Scheduled jobs")


@blp.route("")
class Schedules(MethodView):
    decorators = [auth_required]

    @blp.response(200, schemas.ScheduleOut(many=True))
    def get(self):
        """The caller's schedules, newest first."""
        return schedules.list_of(current_user())

    @blp.arguments(schemas.ScheduleCreate)
    @blp.response(201, schemas.ScheduleOut)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, body):
        """Create a schedule: a cron expression in a time zone and the job it starts."""
        return schedules.create(current_user(), body)


@blp.route("/history")
class History(MethodView):
    decorators = [auth_required]

    @blp.arguments(schemas.HistoryArgs, location="query")
    @blp.response(200, schemas.HistoryPage)
    def get(self, args):
        """Runs of the caller's schedules, newest slot first (deleted schedules' too)."""
        return schedules.history(current_user(), args)


@blp.route("/<schedule_id>")
class Schedule(MethodView):
    decorators = [auth_required]

    @blp.response(200, schemas.ScheduleOut)
    def get(self, schedule_id):
        """One schedule with its next and last run."""
        return schedules.get(schedule_id, current_user())

    @blp.arguments(schemas.ScheduleUpdate)
    @blp.response(200, schemas.ScheduleOut)
    def patch(self, changes, schedule_id):
        """Change it; disabling clears next_run, enabling counts from now (no catch-up)."""
        return schedules.update(schedule_id, current_user(), changes)

    @blp.response(204)
    def delete(self, schedule_id):
        """Delete it; its history and the jobs it started stay."""
        schedules.delete(schedule_id, current_user())


@blp.route("/<schedule_id>/run")
class RunNow(MethodView):
    decorators = [auth_required]

    @blp.response(202, schemas.RunStarted)
    def post(self, schedule_id):
        """Start a run now (trigger `manual`), whatever the cron and the overlap rule."""
        return schedules.run_now(schedule_id, current_user())


@blp.route("/<schedule_id>/changes")
class Changes(MethodView):
    decorators = [auth_required]

    @blp.arguments(schemas.ChangeArgs, location="query")
    @blp.response(200, schemas.ChangesPage)
    def get(self, args, schedule_id):
        """Items added, removed and changed in a run, compared with the previous completed run."""
        return schedules.changes_of(schedule_id, current_user(), args)
