"""The interface every engine implements: run a job spec, report pages and items to a sink."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.jobspec import JobSpec


class Sink(Protocol):
    """Where an engine reports; implemented by shared.results.ItemSink."""

    def page(self, url: str, status: int) -> None: ...

    def items(self, page_url: str, found: list[dict[str, Any]]) -> None: ...

    def log(self, level: str, message: str) -> None: ...

    @property
    def should_stop(self) -> bool: ...


@dataclass
class CrawlResult:
    """How a crawl ended. `error` is {type, message} when the job must be marked failed."""

    pages: int = 0
    items: int = 0
    error: dict[str, str] | None = None
    finish_reason: str = "finished"
    needs_javascript: bool = False  # auto: the static first page gave nothing; render it
    reason: str = ""
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # stored on the job, logged as WARNING
    # auto: the first page's figures, {"url", "items", "values", "has_scripts"}
    first_page: dict[str, Any] | None = None
    # auto: what this run decided, {"engine", "reason", "static_items", "rendered_items"}
    decision: dict[str, Any] | None = None


class Engine(Protocol):
    name: str

    def run(self, spec: JobSpec, sink: Sink) -> CrawlResult: ...
