"""The `spider` engine: a user's own Scrapy spider, run from its egg in a sandboxed process.

The crawl itself happens in scrapers/spider_child.py, started by shared/spider_sandbox.py. This
engine feeds the job's sink from the child's messages (pages, items, log lines), and ends the
child when the job is cancelled, over its timeout, its pages or items, or the child breaks a
limit. It trusts the child for nothing beyond well-formed messages: sizes, counts and levels
are checked here again.
"""

from __future__ import annotations

import logging
import signal
import time
from collections import defaultdict
from typing import Any

from scrapers import failures
from scrapers.engine import CrawlResult, RunContext, Sink
from shared.jobspec import JobSpec
from shared.spider_sandbox import (
    Limits,
    Policy,
    SandboxError,
    SpiderProcess,
    exit_description,
)

logger = logging.getLogger(__name__)

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_LOG_LINES = 5_000  # per run; beyond, one line says how many were left out
MAX_LOG_CHARS = 8_192
MAX_URL_CHARS = 2_048
STOP_GRACE_SECONDS = 3.0  # SIGTERM, then SIGKILL: a cancelled spider is gone within seconds
POLL_SECONDS = 0.25


class SpiderEngine:
    """Runs `engine: "spider"` jobs, each in a fresh sandboxed process."""

    name = "spider"

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.stuck: str | None = None  # nothing of a spider runs in this process

    def close(self) -> None:
        """Nothing to release: each run's process ends with its run."""

    def run(self, spec: JobSpec, sink: Sink, ctx: RunContext | None = None) -> CrawlResult:
        """Run the job's spider from `ctx.egg` and report to `sink` until it ends."""
        if spec.spider is None or ctx is None or ctx.egg is None:
            return CrawlResult(
                error={"type": "spider_error", "message": "the job names no deployed spider"}
            )
        timeout = int(spec.config["timeout_seconds"])
        max_pages = int(spec.config["max_pages"])
        request = {
            "action": "crawl",
            "spider": spec.spider["name"],
            "args": dict(spec.spider.get("args") or {}),
            "settings": dict(spec.spider.get("settings") or {}),
        }
        limits = Limits.from_settings(self.settings, cpu_seconds=timeout + 30)
        try:
            child = SpiderProcess(
                ctx.egg,
                request,
                limits=limits,
                policy=Policy.from_settings(self.settings),
                settings=self.settings,
            )
        except (SandboxError, OSError) as exc:
            sink.log("ERROR", f"the spider could not be started: {exc}")
            return CrawlResult(error={"type": "spider_error", "message": str(exc)})
        with child:
            return _Run(child, sink, timeout, max_pages, limits).follow()


class _Run:
    """One child's messages into the sink, and how the run ended."""

    def __init__(
        self, child: SpiderProcess, sink: Sink, timeout: int, max_pages: int, limits: Limits
    ) -> None:
        self.child, self.sink, self.limits = child, sink, limits
        self.timeout, self.max_pages = timeout, max_pages
        self.pages = 0
        self.items = 0
        self.per_page: dict[str, int] = defaultdict(int)
        self.logged = 0
        self.left_out = 0
        self.error: dict[str, str] | None = None
        self.stopped: str | None = None  # why this engine ended the child
        self.finish_reason: str | None = None
        self.done = False

    def follow(self) -> CrawlResult:
        deadline = time.monotonic() + self.timeout
        started = time.monotonic()
        for message in self.child.messages(timeout=POLL_SECONDS):
            if message is not None:
                self._take(message)
            if self.stopped:
                continue  # ending: read what is left until its stdout closes
            if self.sink.should_stop:
                full = getattr(self.sink, "full", None)
                self._stop("item_limit" if full is not None and full.is_set() else "cancelled")
            elif self.pages >= self.max_pages:
                self._stop("page_limit")
            elif time.monotonic() > deadline:
                self._stop("timeout")
        code = self.child.wait(timeout=10)
        if self.left_out:
            self.sink.log("WARNING", f"{self.left_out} more log lines left out ({MAX_LOG_LINES})")
        if self.child.dropped:
            self.sink.log(
                "WARNING", f"{self.child.dropped} malformed messages of the spider dropped"
            )
        result = CrawlResult(pages=self.pages, items=self.items)
        result.finish_reason = self.finish_reason or "finished"
        if self.stopped == "timeout":
            result.error = failures.job_timeout(self.timeout)
            result.finish_reason = "timeout"
        elif self.stopped in ("cancelled", "item_limit"):
            result.finish_reason = self.stopped
        elif self.stopped == "page_limit":
            result.finish_reason = "page_limit"
            result.warnings.append(f"stopped at {self.max_pages} pages (config.max_pages)")
        elif self.error is None and not self.done:
            self.error = self._exit_error(code)
        if self.error is not None and self.stopped not in ("cancelled", "item_limit", "timeout"):
            result.error = self.error
        took = time.monotonic() - started
        logger.info("spider run: %d pages, %d items in %.1f s", self.pages, self.items, took)
        return result

    def _stop(self, why: str) -> None:
        self.stopped = why
        self.child.stop(grace=STOP_GRACE_SECONDS)

    def _exit_error(self, code: int | None) -> dict[str, str]:
        tail = self.child.stderr_tail(10)
        if code == -signal.SIGXCPU:
            message = f"the spider used more CPU time than allowed ({self.limits.cpu_seconds} s)"
            return {"type": "cpu_limit", "message": message}
        if tail:
            self.sink.log("ERROR", "the spider's last output:\n" + tail[-MAX_LOG_CHARS:])
        return {
            "type": "spider_error",
            "message": f"the spider process {exit_description(code)} without finishing",
        }

    def _take(self, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == "page":
            url = str(message.get("url") or "")[:MAX_URL_CHARS]
            status = message.get("status")
            self.pages += 1
            self.sink.page(url, status if isinstance(status, int) else 0)
        elif kind == "item":
            item = message.get("item")
            if not isinstance(item, dict):
                return
            url = str(message.get("url") or "")[:MAX_URL_CHARS]
            n = self.per_page[url]
            self.per_page[url] = n + 1
            self.items += 1
            # a key per item: a spider yields a page's items one by one, and a re-run of the
            # same spider gives the same keys (no duplicates after a retry or take-over)
            self.sink.items(url, [item], key=f"{url}\n{n}")
        elif kind == "log":
            self._log(message)
        elif kind == "done":
            self.done = True
            reason = message.get("finish_reason")
            self.finish_reason = str(reason)[:100] if reason else "finished"
        elif kind == "error":
            self._failed(message)

    def _log(self, message: dict[str, Any]) -> None:
        if self.logged >= MAX_LOG_LINES:
            self.left_out += 1
            return
        level = str(message.get("level") or "INFO").upper()
        self.logged += 1
        text = str(message.get("message") or "")[:MAX_LOG_CHARS]
        self.sink.log(level if level in LEVELS else "INFO", text)

    def _failed(self, message: dict[str, Any]) -> None:
        kind = str(message.get("type") or "spider_error")
        text = str(message.get("message") or "")[:MAX_LOG_CHARS]
        if kind == "memory_limit":
            mb = self.limits.memory_mb
            self.error = {
                "type": "memory_limit",
                "message": f"the spider needed more memory than allowed (SPIDER_MAX_MEMORY_MB "
                f"= {mb} MB) and was stopped",
            }
        elif kind == "spider_not_found":
            self.error = {"type": "spider_not_found", "message": text}
        elif kind == "bad_egg":
            self.error = {
                "type": "spider_error",
                "message": f"the project's egg is unusable: {text}",
            }
        else:
            self.error = {"type": "spider_error", "message": text or "the spider failed"}
            trace = str(message.get("traceback") or "")
            if trace:
                self.sink.log("ERROR", trace[-MAX_LOG_CHARS:])
