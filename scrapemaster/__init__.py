"""ScrapeMaster client: a Python API client (`scrapemaster.Client`) and the `scrapemaster` CLI."""

from scrapemaster.client import *  # noqa: F403 (the names of scrapemaster.client.__all__)
from scrapemaster.client import __all__  # noqa: F401
