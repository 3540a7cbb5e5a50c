"""ScrapeMaster client: a Python API client (`scrapemaster.Client`) and the `scrapemaster` CLI."""

from scrapemaster.client import (
    DEFAULT_API,
    ApiError,
    BadRequest,
    Client,
    Conflict,
    ConnectionFailed,
    EventStream,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ScrapeMasterError,
    ServerError,
    Unauthorized,
    ValidationFailed,
)

__all__ = [
    "DEFAULT_API",
    "ApiError",
    "BadRequest",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "EventStream",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ScrapeMasterError",
    "ServerError",
    "Unauthorized",
    "ValidationFailed",
]
