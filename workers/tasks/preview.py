"""The selector preview task: one page of a job body, answered on Redis (workers/preview.py)."""

from __future__ import annotations

from celery import shared_task

from shared import tasks
from workers import preview


# acknowledged on receipt: a preview whose worker died is not run again (its caller has had
# its 504 by then)
@shared_task(name=tasks.PREVIEW, acks_late=False, ignore_result=True)
def run_preview(preview_id: str, body: dict, engine: str) -> None:
    """Preview `body`'s selectors on its first page with `engine`."""
    preview.run(preview_id, body, engine)
