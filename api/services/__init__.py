"""Services: what the views do, without HTTP; they raise shared.errors."""

from flask import current_app
from pymongo.database import Database


def db() -> Database:
    """The application database of the current app."""
    return current_app.extensions["scrapemaster_db"]


def settings():
    """The Settings of the current app."""
    return current_app.config["SETTINGS"]
