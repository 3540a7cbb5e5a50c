"""The interface every engine implements: run a job spec, report pages and items to a sink."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from shared.jobspec import AutoDecision, FirstPage, JobSpec

if TYPE_CHECKING:
    from scrapers.proxies import Rotation


class Sink(Protocol):
    """Where an engine reports; implemented by shared.results.ItemSink."""

    def page(self, url: str, status: int) -> None: ...

    def items(self, page_url: str, found: list[dict[str, Any]], key: str | None = None) -> None:
        """`key` names the chunk when one page gives items in several calls (a spider)."""

    def file(self, page_url: str, kind: str, content_type: str, data: bytes) -> bool:
        """Store a file of the page (kind "screenshot" or "pdf"); False when not stored (the
        job's file limit, a write error: logged). Blocking: from the browser's loop, call it
        through asyncio.to_thread."""
        ...

    def log(self, level: str, message: str) -> None: ...

    @property
    def should_stop(self) -> bool: ...


@dataclass(frozen=True)
class AutoPlan:
    """What an `auto` job's engine does around its first page (scrapers/auto.py decides).

    `probe` (static engine): decide on the first page and stop there when it needs a render;
    `probe_options`: the job's browser-only options (scroll, wait_for) also ask for one.
    `compare_with` (browser): the static engine's first-page figures, to render and compare;
    `check_first` (browser): a remembered decision, warned about when the page gives nothing.
    """

    probe: bool = False
    probe_options: bool = True
    compare_with: FirstPage | None = None
    check_first: bool = False


@dataclass(frozen=True)
class RunContext:
    """What one run of a job brings besides its spec: the proxy rotation (config.proxy, with
    the pool behind it), the `auto` plan and the session. Engine-neutral: no queue, no
    database handle."""

    rotation: Rotation | None = None
    auto: AutoPlan = field(default_factory=AutoPlan)
    egg: bytes | None = None  # engine spider: the project's egg (the worker reads it from GridFS)
    # cookies (and the browser's storage) to start with: a login's, config.cookies (in the
    # clear: shared/sessions.py); None for none
    session: dict[str, Any] | None = None


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
    first_page: FirstPage | None = None  # auto: what the first page gave this engine
    decision: AutoDecision | None = None  # auto: what this run decided


class Engine(Protocol):
    """A crawl engine: Scrapy, Playwright (and the spider runner) all run a spec this way.

    `run` blocks the calling thread until the job ends and never raises for what a site
    does: failures come back in the result. `stuck` says why this process can no longer run
    jobs (a thread that stopped answering), `close` releases its warm parts."""

    name: str
    stuck: str | None

    def run(
        self,
        spec: JobSpec,
        sink: Sink,
        ctx: RunContext | None = None,
    ) -> CrawlResult: ...

    def close(self) -> None: ...
