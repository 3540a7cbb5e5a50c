"""The program a user's egg runs in (shared/spider_sandbox.py starts it): list or crawl.

Reads one JSON request on stdin: `{action: "list"|"crawl", egg, spider, args, settings,
limits, policy}`. Before it loads anything of the egg it applies the limits and keeps the
original stdout for itself: the user's code writing to stdout lands in stderr. It answers with
JSON lines (`t` names the kind):

    {"t": "spiders", "names": [...]}                     list
    {"t": "page", "url", "status"}                       crawl: a response received
    {"t": "item", "url", "item": {...}}                  crawl: an item that passed the pipelines
    {"t": "log", "level", "message"}                     crawl: a log record of the crawl
    {"t": "done", "finish_reason", "stats": {...}}       crawl: the spider closed
    {"t": "error", "type", "message"}                    whatever failed

The egg is activated as Scrapyd's runner does: the egg on sys.path, SCRAPY_SETTINGS_MODULE from
its `scrapy` entry point `settings`. The crawl runs on our reactor with the target policy
installed on it (scrapers/resolver.py, and every TCP connection judged again at connect time),
and the settings that would turn that off are forced over the project's and the spider's.
"""

from __future__ import annotations

import configparser
import io
import ipaddress
import json
import logging
import os
import resource
import signal
import site
import socket
import sys
import threading
import traceback
import zipfile
from typing import Any

MAX_ITEM_BYTES = 1024 * 1024
MAX_MESSAGE_CHARS = 8192
FORCED_PRIORITY = 1000  # above every named priority (cmdline is 40): the egg cannot win
REACTOR_CLASS = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
HTTP_HANDLER = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"
# what a project's or spider's settings may not change: the reactor (with the policy on it),
# the download handlers (a handler of its own would open connections the policy never sees),
# and the consoles that listen on ports
FORCED_SETTINGS: dict[str, Any] = {
    "TWISTED_REACTOR_ENABLED": True,
    "TWISTED_REACTOR": REACTOR_CLASS,
    "DOWNLOAD_HANDLERS_BASE": {
        "http": HTTP_HANDLER,
        "https": HTTP_HANDLER,
        "file": None,
        "ftp": None,
        "s3": None,
        "data": None,
    },
    "DOWNLOAD_HANDLERS": {},
    "TELNETCONSOLE_ENABLED": False,
    "REMOTE_CONTROL_ENABLED": False,  # Scrapy 2.19's HTTP control server: a listening port
    "MEMDEBUG_ENABLED": False,
}


class Channel:
    """The JSON-lines pipe to the parent (thread-safe)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()
        # written without allocating when the address space is exhausted
        self.memory_line = (
            json.dumps({"t": "error", "type": "memory_limit", "message": "memory"}) + "\n"
        ).encode()

    def send(self, message: dict[str, Any]) -> None:
        line = (json.dumps(message, default=str, ensure_ascii=False) + "\n").encode()
        self.write(line)

    def write(self, line: bytes) -> None:
        with self.lock:
            view = memoryview(line)
            while view:
                written = os.write(self.fd, view)
                view = view[written:]


def apply_limits(limits: dict[str, Any]) -> None:
    """Lower this process's limits (soft and hard: the egg cannot raise them again)."""
    memory = int(limits.get("memory_mb") or 0)
    if memory > 0:
        size = memory * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    cpu = int(limits.get("cpu_seconds") or 0)
    if cpu > 0:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    files = int(limits.get("open_files") or 0)
    if files > 0:
        resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))
    written = int(limits.get("file_bytes") or 0)
    if written > 0:
        resource.setrlimit(resource.RLIMIT_FSIZE, (written, written))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def activate_egg(path: str) -> str:
    """Put the egg on sys.path; its settings module (the `scrapy` entry point `settings`)."""
    try:
        with zipfile.ZipFile(path) as egg:
            text = egg.read("EGG-INFO/entry_points.txt").decode("utf-8", "replace")
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise BadEgg(f"not a Scrapy project egg ({exc})") from None
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text)
        target = parser.get("scrapy", "settings")
    except (configparser.Error, KeyError):
        raise BadEgg(
            "the egg has no `scrapy` entry point `settings` (build it with scrapyd-deploy "
            "or a setup.py with entry_points={'scrapy': ['settings = yourproject.settings']})"
        ) from None
    sys.path.insert(0, path)
    module = target.split(":", 1)[0].strip()
    os.environ["SCRAPY_SETTINGS_MODULE"] = module
    return module


class BadEgg(Exception):
    """The egg cannot be loaded as a Scrapy project."""


def project_settings() -> Any:
    from scrapy.utils.project import get_project_settings

    return get_project_settings()


def list_spiders(channel: Channel) -> None:
    from scrapy.spiderloader import get_spider_loader

    loader = get_spider_loader(project_settings())
    channel.send({"t": "spiders", "names": sorted(loader.list())})


class _Forward(logging.Handler):
    """The crawl's log records, as `log` messages (the parent caps how many it keeps)."""

    def __init__(self, channel: Channel, on_memory_error: Any) -> None:
        super().__init__()
        self.channel = channel
        self.on_memory_error = on_memory_error

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and isinstance(record.exc_info[1], MemoryError):
            self.on_memory_error()
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += "\n" + "".join(traceback.format_exception(*record.exc_info)).strip()
            level = record.levelname if record.levelname in LEVELS else "INFO"
            self.channel.send({"t": "log", "level": level, "message": message[:MAX_MESSAGE_CHARS]})
        except MemoryError:
            self.on_memory_error()
        except Exception:  # a record that cannot be formatted: never break the crawl for it
            pass


LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def guard_connections(reactor: Any, policy: Any) -> None:
    """Judge every TCP connection the reactor opens against `policy`, whatever opened it
    (HostnameEndpoint resolves through scrapers/resolver.py first; a proxy connection,
    TCP4ClientEndpoint, names its host directly)."""
    from twisted.internet.error import ConnectionRefusedError as Refused

    real_connect = reactor.connectTCP

    def connect_tcp(host: str, port: int, factory: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            address = str(ipaddress.ip_address(host.split("%", 1)[0]))
            candidates = [address]
        except ValueError:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise Refused(f"{host}: {exc}") from None
            candidates = [str(info[4][0]) for info in infos]
        for candidate in candidates:
            if policy.allows(candidate, port, host):
                return real_connect(candidate, port, factory, *args, **kwargs)
        why = policy.refusal(candidates[0], port, host) if candidates else "no address"
        raise Refused(f"blocked by the target policy: {why}")

    def refuse(*_: Any, **__: Any) -> Any:
        raise Refused("blocked by the target policy: only TCP connections are allowed")

    reactor.connectTCP = connect_tcp
    reactor.connectUNIX = refuse
    reactor.connectSSL = refuse


def crawl(channel: Channel, request: dict[str, Any]) -> int:
    from scrapy.utils.reactor import install_reactor

    install_reactor(REACTOR_CLASS)
    from twisted.internet import reactor as installed

    reactor: Any = installed

    from scrapers import resolver
    from shared.spider_sandbox import Policy

    policy = Policy(**request.get("policy") or {}).target_policy()
    resolver.install(reactor, policy)
    guard_connections(reactor, policy)

    from itemadapter import ItemAdapter
    from scrapy.crawler import CrawlerRunner

    settings = project_settings()
    user_settings = request.get("settings") or {}
    if isinstance(user_settings, dict):
        settings.setdict(user_settings, priority="cmdline")
    for name, value in FORCED_SETTINGS.items():
        settings.set(name, value, priority=FORCED_PRIORITY)
    level = str(settings.get("LOG_LEVEL") or "INFO").upper()
    if settings.getpriority("LOG_LEVEL") == 0:  # Scrapy's default, DEBUG: a line per request
        level = "INFO"
    state: dict[str, Any] = {"memory": False, "reason": None}

    def memory_exhausted() -> None:
        # the allocation failed and was unwound: report, and end at once (the crawl may be
        # in any state; nothing more of it is worth waiting for)
        state["memory"] = True
        try:
            channel.write(channel.memory_line)
        finally:
            os._exit(3)

    handler = _Forward(channel, memory_exhausted)
    handler.setLevel(getattr(logging, level, logging.INFO))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(handler.level)

    runner = CrawlerRunner(settings)
    spider = str(request.get("spider") or "")
    try:
        crawler = runner.create_crawler(spider)
    except KeyError:
        channel.send({"t": "error", "type": "spider_not_found", "message": f"no spider {spider!r}"})
        return 2

    def on_item(item: Any, response: Any = None, spider: Any = None) -> None:
        try:
            data = ItemAdapter(item).asdict() if ItemAdapter.is_item(item) else {"value": item}
            line = json.dumps(
                {"t": "item", "url": getattr(response, "url", "") or "", "item": data},
                default=str,
                ensure_ascii=False,
            )
        except MemoryError:
            memory_exhausted()
            return
        except (TypeError, ValueError) as exc:
            channel.send({"t": "log", "level": "ERROR", "message": f"item not stored: {exc}"})
            return
        if len(line) > MAX_ITEM_BYTES:
            channel.send(
                {
                    "t": "log",
                    "level": "ERROR",
                    "message": f"item not stored: {len(line)} bytes, over {MAX_ITEM_BYTES}",
                }
            )
            return
        channel.write((line + "\n").encode())

    def on_response(response: Any, request: Any = None, spider: Any = None) -> None:
        channel.send({"t": "page", "url": response.url, "status": int(response.status)})

    def on_error(failure: Any, response: Any = None, spider: Any = None) -> None:
        if failure.check(MemoryError):
            memory_exhausted()

    def on_closed(spider: Any, reason: str) -> None:
        state["reason"] = reason

    from scrapy import signals

    crawler.signals.connect(on_item, signal=signals.item_scraped)
    crawler.signals.connect(on_response, signal=signals.response_received)
    crawler.signals.connect(on_error, signal=signals.spider_error)
    crawler.signals.connect(on_closed, signal=signals.spider_closed)

    def stop(*_: Any) -> None:
        reactor.callFromThread(crawler.stop)

    signal.signal(signal.SIGTERM, stop)
    outcome: dict[str, Any] = {}

    def finished(result: Any) -> None:
        if hasattr(result, "getTraceback"):  # a Failure: the crawl itself could not run
            outcome["error"] = result
        reactor.callLater(0, reactor.stop)

    args = request.get("args") or {}
    d = runner.crawl(crawler, **{str(k): v for k, v in dict(args).items()})
    d.addBoth(finished)
    reactor.run(installSignalHandlers=False)
    if "error" in outcome:
        failure = outcome["error"]
        if failure.check(MemoryError):
            memory_exhausted()
        channel.send(
            {
                "t": "error",
                "type": "spider_error",
                "message": _summary(failure.value),
                "traceback": failure.getTraceback()[-MAX_MESSAGE_CHARS:],
            }
        )
        return 1
    stats = {k: v for k, v in (crawler.stats.get_stats() or {}).items() if _plain(v)}
    channel.send(
        {
            "t": "done",
            "finish_reason": state["reason"] or stats.get("finish_reason"),
            "stats": stats,
        }
    )
    return 0


def _plain(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool)) or value is None


def _summary(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()[:MAX_MESSAGE_CHARS]


def main() -> int:
    channel = Channel(os.dup(1))
    os.dup2(2, 1)  # the user's prints go to stderr, never into the protocol
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), write_through=True)
    try:
        request = json.loads(sys.stdin.read(1024 * 1024) or "{}")
    except ValueError:
        channel.send({"t": "error", "type": "bad_request", "message": "unreadable request"})
        return 2
    for directory in (os.environ.get("SCRAPEMASTER_SITE_DIRS") or "").split(os.pathsep):
        if directory:
            site.addsitedir(directory)  # the worker's packages (.pth files included)
    try:
        apply_limits(request.get("limits") or {})
        activate_egg(str(request["egg"]))
        if request.get("action") == "list":
            list_spiders(channel)
            return 0
        return crawl(channel, request)
    except MemoryError:
        channel.write(channel.memory_line)
        return 3
    except BadEgg as exc:
        channel.send({"t": "error", "type": "bad_egg", "message": str(exc)})
        return 2
    except Exception as exc:
        traceback.print_exc()
        channel.send({"t": "error", "type": "spider_error", "message": _summary(exc)})
        return 1


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)
