"""Services: what the views do, without HTTP; they raise shared.errors."""

from flask import current_app
from pymongo.database import Database

from shared.events import EventLog


def db() -> Database:
    """The application database of the current app."""
    return current_app.extensions["scrapemaster_db"]


def settings():
    """The Settings of the current app."""
    return current_app.config["SETTINGS"]


def event_log() -> EventLog:
    """The job event log (Redis Streams) of the current app."""
    return current_app.extensions["scrapemaster_events"]
